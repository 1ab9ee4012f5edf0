//! [`Source`]: which loading layer gave a setting its value.

use std::fmt;

/// Where the effective value of a setting came from, lowest precedence first.
///
/// Connection-string options sit above the defaults (the string is where many deployments,
/// such as Atlas, put them) and below everything set for Keel explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Keel's base default.
    Default,
    /// The profile's default (development, testing, production).
    Profile,
    /// The runtime preset's default (server, serverless).
    Preset,
    /// An option in the connection string (`maxPoolSize=20`, `appName=…`).
    Uri,
    /// The TOML file.
    File,
    /// A `KEEL_*` environment variable.
    Env,
    /// An explicit override (code or command line).
    Override,
    /// Changed in code on the struct after loading.
    Code,
}

impl Source {
    /// The lowercase name shown by `explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Profile => "profile",
            Source::Preset => "preset",
            Source::Uri => "uri",
            Source::File => "file",
            Source::Env => "env",
            Source::Override => "override",
            Source::Code => "code",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
