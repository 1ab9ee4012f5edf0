//! Wire compression algorithms the driver is built with.

use std::fmt;

/// A wire-protocol compressor. Keel builds the driver with zlib and snappy only (pure Rust, no
/// C toolchain); zstd is rejected with a message saying so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// zlib at the driver's default level: better ratio, more CPU.
    Zlib,
    /// snappy: less CPU, lower ratio.
    Snappy,
}

impl Compression {
    /// The name used in files, environment variables and connection strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zlib => "zlib",
            Compression::Snappy => "snappy",
        }
    }

    pub(crate) fn to_driver(self) -> mongodb::options::Compressor {
        match self {
            Compression::Zlib => mongodb::options::Compressor::Zlib { level: None },
            Compression::Snappy => mongodb::options::Compressor::Snappy,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
