//! Where the dashboard listens, who may see it, and how much history it keeps.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use keel_core::Secret;

use crate::DashboardError;

/// Shortest accepted token: long enough that guessing it over HTTP is hopeless.
pub(crate) const MIN_TOKEN: usize = 16;

/// The dashboard's settings.
///
/// ```
/// use keel_health::dashboard::DashboardConfig;
/// let mut config = DashboardConfig::default();
/// assert!(config.bind.ip().is_loopback());
/// config.bind = "0.0.0.0:9400".parse().unwrap();
/// assert!(config.check().is_err()); // elsewhere than loopback needs a token
/// config.token = Some(keel_core::Secret::new("a-long-random-token-value".into()));
/// assert!(config.check().is_ok());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DashboardConfig {
    /// Address to listen on. Default `127.0.0.1:9400`: only this machine can see it.
    pub bind: SocketAddr,
    /// Bearer token; required when `bind` is not a loopback address. Default none.
    pub token: Option<Secret<String>>,
    /// Samples kept. Default 3600: one hour at the default resolution.
    pub history: usize,
    /// Time between samples (and SSE updates). Default 1 s.
    pub resolution: Duration,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 9400)),
            token: None,
            history: 3600,
            resolution: Duration::from_secs(1),
        }
    }
}

impl DashboardConfig {
    /// Refuses a non-loopback address without a token, and a weak token.
    pub fn check(&self) -> Result<(), DashboardError> {
        match &self.token {
            Some(token) if token.expose().chars().count() < MIN_TOKEN => {
                Err(DashboardError::WeakToken)
            }
            None if !self.bind.ip().is_loopback() => Err(DashboardError::TokenRequired(self.bind)),
            _ => Ok(()),
        }
    }
}
