//! Errors returned by the testkit's Rust API (starting servers and proxies, persistence).

use std::fmt;
use std::path::PathBuf;

/// Why a [`TestServer`](crate::TestServer) or [`FaultProxy`](crate::FaultProxy) operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TestkitError {
    /// Binding or re-binding the listening socket failed (port in use, bad address…).
    Bind {
        /// The address we tried to bind.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Reading or writing the data directory failed.
    Persistence {
        /// The file involved.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The data directory holds something the testkit did not write or cannot read.
    CorruptData {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A fail point description is invalid (same checks as mongod's `configureFailPoint`).
    InvalidFailPoint(String),
    /// The operation needs a running server or proxy, and it is stopped.
    NotRunning,
    /// A builder option or combination of options is invalid (e.g. zero replica-set members).
    InvalidConfig(String),
    /// A replica-set role change was refused (not a replica set, no such member, nobody to
    /// take over).
    Election(String),
}

impl fmt::Display for TestkitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Persistence { path, source } => {
                write!(f, "cannot access data file {}: {source}", path.display())
            }
            Self::CorruptData { path, reason } => {
                write!(f, "data file {} is unreadable: {reason}", path.display())
            }
            Self::InvalidFailPoint(reason) => write!(f, "invalid fail point: {reason}"),
            Self::NotRunning => f.write_str("the server is not running"),
            Self::InvalidConfig(reason) => write!(f, "invalid configuration: {reason}"),
            Self::Election(reason) => write!(f, "election refused: {reason}"),
        }
    }
}

impl std::error::Error for TestkitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } | Self::Persistence { source, .. } => Some(source),
            _ => None,
        }
    }
}
