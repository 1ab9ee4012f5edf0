//! Building a managed client from a `keel_config::KeelConfig`.

use keel_config::KeelConfig;
use keel_core::Error;

use crate::{CheckoutLimitLayer, ManagedClient, ManagedSettings};

impl ManagedSettings {
    /// The settings a [`KeelConfig`] implies: start-up retries follow `retry`, the reconnect
    /// queue follows `pool.reconnect_queue`, a queued request waits at most the server
    /// selection timeout (or the overall deadline, if shorter), and the serverless preset
    /// connects lazily.
    pub fn from_config(config: &KeelConfig) -> Self {
        let defaults = Self::default();
        Self {
            connect_attempts: config.retry.max_attempts.max(1),
            connect_backoff: config.retry.initial_backoff,
            connect_backoff_max: config.retry.max_backoff,
            lazy_connect: config.lazy_connect,
            reconnect_queue: usize::try_from(config.pool.reconnect_queue).unwrap_or(usize::MAX),
            reconnect_wait: config
                .timeouts
                .server_selection
                .min(config.timeouts.deadline),
            ..defaults
        }
    }
}

impl ManagedClient {
    /// Connects as `config` says: maps it to driver options (resolving `mongodb+srv` URIs),
    /// then validates the connection like [`ManagedClient::connect_with`].
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), keel_core::Error> {
    /// let config = keel_config::KeelConfig::for_uri("mongodb://127.0.0.1:27017")?;
    /// let client = keel_pool_core::ManagedClient::connect(&config).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: &KeelConfig) -> Result<Self, Error> {
        let options = config.to_client_options().await?;
        Self::connect_with(options, ManagedSettings::from_config(config)).await
    }
}

impl CheckoutLimitLayer {
    /// The limit a [`KeelConfig`] implies: as many operations at once as the pool holds
    /// (`pool.max_size`), at most `pool.max_waiting` waiting, each for at most
    /// `timeouts.checkout_wait`.
    pub fn from_config(config: &KeelConfig) -> Self {
        let size = usize::try_from(config.pool.max_size).unwrap_or(usize::MAX);
        let waiting = usize::try_from(config.pool.max_waiting).unwrap_or(usize::MAX);
        Self::new(size, config.timeouts.checkout_wait).with_max_waiting(waiting)
    }
}
