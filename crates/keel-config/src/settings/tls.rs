//! TLS settings: whether to use TLS and which files and relaxations apply.

use std::fmt;
use std::path::PathBuf;

/// TLS for connections to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// Whether TLS is on.
    pub mode: TlsMode,
    /// PEM file of the certificate authorities to trust instead of the bundled Mozilla roots.
    /// Must exist.
    pub ca_file: Option<PathBuf>,
    /// PEM file with the client certificate and its key, for X.509 authentication. Must exist.
    pub cert_key_file: Option<PathBuf>,
    /// Accept any server certificate. Allowed in the development and testing profiles only.
    pub allow_invalid_certificates: bool,
    /// Accept a certificate for another host name. Only the development profile may ask, and
    /// even then Keel refuses: the driver's rustls backend cannot skip only the host name check.
    pub allow_invalid_hostnames: bool,
}

/// Whether connections use TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// As the connection string says (`tls=true`; `mongodb+srv://` turns it on); setting a CA
    /// or certificate file also turns it on.
    FromUri,
    /// Always on.
    On,
    /// Always off; a CA or certificate file is then an error.
    Off,
}

impl TlsMode {
    /// Every mode.
    pub const ALL: [TlsMode; 3] = [TlsMode::FromUri, TlsMode::On, TlsMode::Off];

    /// The name used in files and environment variables.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::FromUri => "from-uri",
            TlsMode::On => "on",
            TlsMode::Off => "off",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
