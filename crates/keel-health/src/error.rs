//! The crate's small named errors: invalid configuration, webhook and dashboard set-up.

use std::net::SocketAddr;

/// A health, alert, gate or dashboard setting is invalid.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{field} must be greater than zero")]
    ZeroDuration {
        /// The setting.
        field: &'static str,
    },
    /// A count that must be at least one is zero.
    #[error("{field} must be at least 1")]
    ZeroCount {
        /// The setting.
        field: &'static str,
    },
    /// A threshold clears above the level it raises at, so it would never clear (or flap).
    #[error("{field}: clear_at ({clear_at}) must not be above raise_at ({raise_at})")]
    ClearAboveRaise {
        /// The threshold.
        field: &'static str,
        /// Its raise level, as text.
        raise_at: String,
        /// Its clear level, as text.
        clear_at: String,
    },
    /// A ratio is outside `0..=1` or not a number.
    #[error("{field} must be a ratio between 0 and 1, got {value}")]
    BadRatio {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The jitter is not below 1 (a jitter of 100 % could make the interval zero).
    #[error("jitter must be at least 0 and below 1, got {0}")]
    BadJitter(f64),
}

impl From<ConfigError> for keel_core::Error {
    fn from(err: ConfigError) -> Self {
        keel_core::Error::config(err.to_string())
    }
}

/// A webhook sink could not be created.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The URL is not `http://host[:port]/path` or `https://…`. The URL itself is not repeated:
    /// webhook URLs often carry a secret in their path.
    #[error("the webhook URL is invalid: {0}")]
    InvalidUrl(&'static str),
    /// `WebhookConfig::backoff` is not a valid backoff (the reason from keel-retry).
    #[error("the webhook backoff is invalid: {0}")]
    InvalidBackoff(String),
    /// `WebhookConfig::ca_pem` holds no usable CA certificate, or was set for an `http://` URL.
    #[error("the webhook CA certificate is invalid: {0}")]
    InvalidCaCertificate(String),
    /// The TLS client could not be set up.
    #[error("the webhook TLS client cannot be set up: {0}")]
    Tls(String),
}

/// The dashboard could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// Bound to a non-loopback address without a bearer token.
    #[error(
        "the dashboard is bound to {0}, which is not a loopback address: set a bearer token \
         (DashboardConfig::token) or bind to 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    /// The token is empty or too short to resist guessing.
    #[error("the dashboard token must be at least 16 characters")]
    WeakToken,
    /// The address could not be bound.
    #[error("could not bind the dashboard to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}
