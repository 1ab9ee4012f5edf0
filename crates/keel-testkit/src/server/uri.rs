//! Connection-string pieces: credentials (redacted in `Debug`), percent-encoding, and the
//! temporary CA file a TLS server names in `tlsCAFile`.

use std::path::PathBuf;

use crate::error::TestkitError;

/// A user name and password; `Debug` never shows the password.
#[derive(Clone)]
pub(super) struct Credentials {
    pub(super) user: String,
    pub(super) password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A temporary file, removed on drop.
#[derive(Debug)]
pub(super) struct CaFile(pub(super) PathBuf);

impl CaFile {
    pub(super) fn write(pem: &str) -> Result<Self, TestkitError> {
        let name = format!(
            "keel-testkit-ca-{}-{:016x}.pem",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, pem).map_err(|source| TestkitError::Persistence {
            path: path.clone(),
            source,
        })?;
        Ok(Self(path))
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Percent-encodes a file path for a connection-string option, keeping `/`.
pub(super) fn percent_encode_path(path: &str) -> String {
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-encodes a connection-string user or password (RFC 3986 unreserved kept).
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
