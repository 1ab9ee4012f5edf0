//! Keeping credentials out of every string Keel produces: `Debug`, `Display`, errors and logs.
//!
//! Two tools: [`Secret`] wraps a value so that formatting never shows it, and
//! [`redact_uri`]/[`redact_text`] scrub credentials from text Keel did not write itself (a
//! driver error message, a connection string the user passed in).

use std::fmt;

/// The text that replaces a hidden value.
pub const REDACTED: &str = "<redacted>";

/// A value that never appears when formatted.
///
/// ```
/// use keel_core::Secret;
/// let password = Secret::new(String::from("hunter2"));
/// assert_eq!(format!("{password:?} {password}"), "<redacted> <redacted>");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value. Every call site is a place a secret leaves its wrapper: keep them few.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A MongoDB connection string with its user info and secret-bearing options hidden.
///
/// Hosts stay (an operator needs them); `user:password@` becomes `<redacted>@` and the values
/// of options that can carry secrets (`password`, `authMechanismProperties`, `tlsCertificateKeyFilePassword`…)
/// are replaced.
///
/// Strict on purpose, because malformed strings are the ones that get printed in errors:
/// everything before the last `@` outside the options is hidden, even when an unescaped `/` in
/// the password makes it look like a path or the scheme is misspelt, and an `@` after an
/// unescaped `?` in the password hides what comes before it too.
///
/// ```
/// use keel_core::redact::redact_uri;
/// assert_eq!(
///     redact_uri("mongodb://alice:s3cret@db.example:27017/app?authMechanismProperties=AWS_SESSION_TOKEN:abc"),
///     "mongodb://<redacted>@db.example:27017/app?authMechanismProperties=<redacted>",
/// );
/// assert_eq!(redact_uri("mongodb://alice:s3/cret@db.example/"), "mongodb://<redacted>@db.example/");
/// ```
pub fn redact_uri(uri: &str) -> String {
    let (scheme, rest) = match uri.find("://") {
        Some(at) => uri.split_at(at + 3),
        None => ("", uri),
    };
    match user_info_end(rest) {
        Some(at) => format!("{scheme}{REDACTED}{}", redact_options(&rest[at..])),
        None => format!("{scheme}{}", redact_options(rest)),
    }
}

/// Where the user info of `rest` (a connection string after its scheme) ends: the last `@`
/// before the options, or, when there is none, an `@` after a `?` that starts no option (a `?`
/// inside an unescaped password: no `=` between it and the `@`).
fn user_info_end(rest: &str) -> Option<usize> {
    let options_start = rest.find('?').unwrap_or(rest.len());
    if let Some(at) = rest[..options_start].rfind('@') {
        return Some(at);
    }
    let query = &rest[options_start..];
    let at = query.rfind('@')?;
    (!query[..at].contains(['=', '&'])).then_some(options_start + at)
}

/// Option names whose values may hold a secret, compared case-insensitively.
const SECRET_OPTIONS: &[&str] = &[
    "password",
    "pwd",
    "authmechanismproperties",
    "tlscertificatekeyfilepassword",
    "sslclientcertificatekeypassword",
    "secret",
    "token",
    "aws_session_token",
    "aws_secret_access_key",
];

fn is_secret_option(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    SECRET_OPTIONS.iter().any(|secret| name.ends_with(secret))
}

fn redact_options(text: &str) -> String {
    let Some(query_start) = text.find('?') else {
        return text.to_owned();
    };
    let (path, query) = text.split_at(query_start + 1);
    let options: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_option(name) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}{}", options.join("&"))
}

/// Free text (an error message, a log line) with every embedded connection string redacted and
/// `password=…`/`password: …` style pairs hidden.
///
/// ```
/// use keel_core::redact::redact_text;
/// let msg = "failed to connect to mongodb+srv://bob:pw@cluster0.example/ (password=pw)";
/// let clean = redact_text(msg);
/// assert!(!clean.contains("pw@") && !clean.contains("=pw"));
/// assert!(clean.contains("cluster0.example"));
/// ```
pub fn redact_text(text: &str) -> String {
    // Every secret this finds sits in a URI or after `=`/`:`; most error texts have neither,
    // and they are built on hot paths (fail-fast refusals).
    if !text.contains("mongodb") && !text.contains(['=', ':']) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_uri_start(rest) {
        out.push_str(&redact_pairs(&rest[..start]));
        let uri_len = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ','))
            .unwrap_or(rest.len() - start);
        out.push_str(&redact_uri(&rest[start..start + uri_len]));
        rest = &rest[start + uri_len..];
    }
    out.push_str(&redact_pairs(rest));
    out
}

fn find_uri_start(text: &str) -> Option<usize> {
    let plain = text.find("mongodb://");
    let srv = text.find("mongodb+srv://");
    match (plain, srv) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Hides the value in `name=value` and `name: value` pairs whose name looks secret.
fn redact_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut hide_next = false;
    for word in text.split_inclusive(char::is_whitespace) {
        if hide_next && !word.trim().is_empty() {
            let trailing: String = word.chars().skip_while(|c| !c.is_whitespace()).collect();
            out.push_str(REDACTED);
            out.push_str(&trailing);
            hide_next = false;
            continue;
        }
        let bare = word.trim_end();
        let trailing = &word[bare.len()..];
        if let Some((name, _)) = bare.split_once(['=', ':'])
            && is_secret_option(name.trim_start_matches(['(', '"', '\'', '{', '[']))
        {
            let sep_at = name.len();
            let sep = &bare[sep_at..=sep_at];
            if bare.len() == sep_at + 1 {
                // "password: value" with the value in the next word.
                out.push_str(bare);
                out.push_str(trailing);
                hide_next = true;
            } else {
                let tail_punct: String = bare[sep_at + 1..]
                    .chars()
                    .rev()
                    .take_while(|c| matches!(c, ')' | ',' | '"' | '\'' | '}' | ']'))
                    .collect();
                out.push_str(&bare[..sep_at]);
                out.push_str(sep);
                out.push_str(REDACTED);
                out.extend(tail_punct.chars().rev());
                out.push_str(trailing);
            }
            continue;
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_without_credentials_is_unchanged() {
        let uri = "mongodb://db1:27017,db2:27017/app?replicaSet=rs0";
        assert_eq!(redact_uri(uri), uri);
    }

    #[test]
    fn uri_user_info_is_hidden_even_with_at_in_password() {
        let out = redact_uri("mongodb://u:p@ss@host/db");
        assert_eq!(out, "mongodb://<redacted>@host/db");
    }

    #[test]
    fn malformed_uris_hide_everything_before_the_last_at() {
        for raw in [
            "mongodb://user:Sx/9@host/db",
            "mongodb//user:Sx9@host",
            "user:Sx9@host",
            "mongodb://user:S@x9@host/?password=Sx9",
            "mongodb://user:S?x9@host/",
        ] {
            let shown = redact_uri(raw);
            assert!(
                !shown.contains("Sx") && !shown.contains("x9"),
                "{raw} -> {shown}"
            );
            assert!(shown.contains("host"), "{raw} -> {shown}");
        }
        // An `@` inside an option value is not user info.
        assert_eq!(
            redact_uri("mongodb://h/?appName=a@b"),
            "mongodb://h/?appName=a@b"
        );
    }

    #[test]
    fn srv_uri_is_redacted() {
        let out = redact_uri("mongodb+srv://user:pw@c0.example.net/?retryWrites=true");
        assert_eq!(
            out,
            "mongodb+srv://<redacted>@c0.example.net/?retryWrites=true"
        );
    }

    #[test]
    fn secret_options_are_hidden() {
        let out = redact_uri("mongodb://h/?tlsCertificateKeyFilePassword=abc&appName=x");
        assert_eq!(
            out,
            "mongodb://h/?tlsCertificateKeyFilePassword=<redacted>&appName=x"
        );
    }

    #[test]
    fn text_without_uri_or_pairs_is_copied_as_is() {
        let text = "circuit open, calls fail fast (retry in 30s)";
        assert_eq!(redact_text(text), text);
        // One marker is enough to take the full path.
        assert!(!redact_text("auth failed password=hunter2").contains("hunter2"));
        assert!(!redact_text("at mongodb+srv://u:pw@h/").contains("pw@"));
    }

    #[test]
    fn text_pairs_are_hidden() {
        assert_eq!(redact_text("password=hunter2 ok"), "password=<redacted> ok");
        assert_eq!(
            redact_text("password: hunter2, ok"),
            "password: <redacted> ok"
        );
        assert_eq!(redact_text("(password=hunter2)"), "(password=<redacted>)");
        assert_eq!(redact_text("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn several_uris_in_text_are_all_redacted() {
        let out = redact_text("a mongodb://x:1@h1 b 'mongodb://y:2@h2/' c");
        assert_eq!(
            out,
            "a mongodb://<redacted>@h1 b 'mongodb://<redacted>@h2/' c"
        );
    }

    #[test]
    fn secret_formats_as_redacted() {
        let s = Secret::new("pw");
        assert_eq!(
            format!("{s} {s:?} {s:#?}"),
            "<redacted> <redacted> <redacted>"
        );
        assert_eq!(*s.expose(), "pw");
    }
}
