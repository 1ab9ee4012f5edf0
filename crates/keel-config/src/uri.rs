//! [`ConnectionUri`]: a MongoDB connection string that never shows its credentials.

use std::fmt;

use keel_core::redact::redact_uri;

/// A MongoDB connection string. `Debug` and `Display` hide the user info and secret options;
/// [`ConnectionUri::expose`] gives the real text to the driver.
///
/// ```
/// use keel_config::ConnectionUri;
/// let uri = ConnectionUri::new("mongodb://app:hunter2@db.example:27017/");
/// assert_eq!(uri.to_string(), "mongodb://<redacted>@db.example:27017/");
/// assert!(!format!("{uri:?}").contains("hunter2"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUri(String);

impl ConnectionUri {
    /// Wraps a connection string; it is checked by validation, not here.
    pub fn new(uri: impl Into<String>) -> Self {
        Self(uri.into())
    }

    /// The connection string with its credentials. Keep call sites few: only the driver needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The user-info part (`user:password`) if the string has one.
    pub(crate) fn user_info(&self) -> Option<&str> {
        let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, r)| r);
        let authority = rest.split_once('?').map_or(rest, |(a, _)| a);
        authority.rfind('@').map(|at| &authority[..at])
    }
}

impl fmt::Debug for ConnectionUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionUri({:?})", redact_uri(&self.0))
    }
}

impl fmt::Display for ConnectionUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_uri(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Keel redacts connection strings with keel-core's `redact_uri` alone; these cases, first
    // written for keel-config's own copy, keep it strict enough for malformed strings.
    #[test]
    fn malformed_strings_hide_everything_before_the_at() {
        for raw in [
            "mongodb://user:Sx/9@host/db",
            "mongodb//user:Sx9@host",
            "user:Sx9@host",
            "mongodb://user:S@x9@host/?password=Sx9",
        ] {
            let shown = redact_uri(raw);
            assert!(
                !shown.contains("Sx") && !shown.contains("x9"),
                "{raw} -> {shown}"
            );
            assert!(shown.contains("host"), "{raw} -> {shown}");
        }
    }

    #[test]
    fn strings_without_credentials_are_kept() {
        let raw = "mongodb://h1:27017,h2/app?replicaSet=rs0";
        assert_eq!(redact_uri(raw), raw);
    }

    #[test]
    fn user_info_is_found() {
        assert_eq!(
            ConnectionUri::new("mongodb://a:b@h/").user_info(),
            Some("a:b")
        );
        assert_eq!(ConnectionUri::new("mongodb://h/?x=a@b").user_info(), None);
        assert_eq!(ConnectionUri::new("mongodb://h/").user_info(), None);
    }
}
