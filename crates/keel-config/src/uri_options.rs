//! The connection string's own options (`maxPoolSize=20`, `appName=…`) as a loading layer, so
//! a pasted Atlas string keeps its settings and `explain` shows them with source `uri`.

use crate::error::ConfigError;
use crate::fields::index_of_path;
use crate::file::Assignment;

/// Connection-string option (lowercase) → Keel setting, and whether the value is milliseconds.
const MAPPED: &[(&str, &str, bool)] = &[
    ("appname", "app_name", false),
    ("maxpoolsize", "pool.max_size", false),
    ("minpoolsize", "pool.min_size", false),
    ("maxconnecting", "pool.max_connecting", false),
    ("maxidletimems", "pool.max_idle", true),
    ("connecttimeoutms", "timeouts.connect", true),
    (
        "serverselectiontimeoutms",
        "timeouts.server_selection",
        true,
    ),
    ("heartbeatfrequencyms", "heartbeat", true),
    ("compressors", "compressors", false),
    ("readconcernlevel", "read_concern", false),
    ("w", "write_concern.w", false),
    ("journal", "write_concern.journal", false),
    ("tlscafile", "tls.ca_file", false),
    ("tlscertificatekeyfile", "tls.cert_key_file", false),
    (
        "tlsallowinvalidcertificates",
        "tls.allow_invalid_certificates",
        false,
    ),
    ("tlsinsecure", "tls.allow_invalid_certificates", false),
    (
        "tlsallowinvalidhostnames",
        "tls.allow_invalid_hostnames",
        false,
    ),
];

/// The Keel settings named by the options of `uri`. Options Keel does not manage are left to
/// the driver, which also reports malformed strings.
pub(crate) fn read(uri: &str, errors: &mut Vec<ConfigError>) -> Vec<Assignment> {
    let Some((_, query)) = uri.split_once('?') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let lower = name.to_ascii_lowercase();
        let Some((_, path, millis)) = MAPPED.iter().find(|(option, _, _)| *option == lower) else {
            continue;
        };
        let Some(index) = index_of_path(path) else {
            continue;
        };
        let value = percent_decode(value);
        let text = if *millis {
            match value.parse::<u64>() {
                Ok(ms) => format!("{ms}ms"),
                Err(_) => {
                    errors.push(
                        ConfigError::new(
                            format!("uri option {name}"),
                            "not a whole number of milliseconds",
                            format!("write {name}=5000 for 5 seconds, or set {path} instead"),
                        )
                        .with_value(value),
                    );
                    continue;
                }
            }
        } else {
            value
        };
        out.push(Assignment {
            index,
            name: format!("uri option {name}"),
            text,
        });
    }
    out
}

/// Decodes `%XX` escapes; a malformed escape is kept as written for the driver to report.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ok(uri: &str) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let out = read(uri, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        out.into_iter()
            .map(|a| (crate::fields::fields()[a.index].path().to_owned(), a.text))
            .collect()
    }

    #[test]
    fn managed_options_map_to_settings_with_units() {
        let out = read_ok(
            "mongodb+srv://u:p@c.example/?retryWrites=true&w=majority&appName=My%20App&maxPoolSize=7&connectTimeoutMS=2500",
        );
        assert_eq!(
            out,
            [
                ("write_concern.w".to_owned(), "majority".to_owned()),
                ("app_name".to_owned(), "My App".to_owned()),
                ("pool.max_size".to_owned(), "7".to_owned()),
                ("timeouts.connect".to_owned(), "2500ms".to_owned()),
            ]
        );
    }

    #[test]
    fn strings_without_options_add_nothing() {
        assert!(read_ok("mongodb://h/").is_empty());
        assert!(read_ok("mongodb://h/?replicaSet=rs0").is_empty());
    }

    #[test]
    fn bad_milliseconds_are_reported() {
        let mut errors = Vec::new();
        read("mongodb://h/?maxIdleTimeMS=soon", &mut errors);
        assert_eq!(errors[0].field(), "uri option maxIdleTimeMS");
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%2Cb%zz%"), "a,b%zz%");
    }
}
