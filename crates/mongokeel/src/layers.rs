//! From `KeelConfig` to each layer's own configuration. The layer crates own their settings
//! types and the mapping of those onto their layers; what is left here are the settings that
//! cross sections (the call's deadline and attempt timeout given to the retry layer, start-up
//! retries following `retry`, the checkout wait from `timeouts`).

use keel_config::KeelConfig;
use keel_core::Error;
use keel_pool_core::{CheckoutLimitLayer, ManagedClient, ManagedSettings};

/// The retry layer's configuration for `config`: its settings, bounded by the deadline and
/// the attempt timeout.
#[cfg(feature = "retry")]
pub(crate) fn retry_config(config: &KeelConfig) -> keel_retry::RetryConfig {
    config.retry.to_config(
        Some(config.timeouts.deadline),
        Some(config.timeouts.attempt),
    )
}

/// The breaker's configuration for `config`.
#[cfg(feature = "breaker")]
pub(crate) fn breaker_config(config: &KeelConfig) -> keel_breaker::BreakerConfig {
    config.breaker.to_config()
}

/// The health monitor's settings for `config`, with the pool size it measures saturation by.
#[cfg(feature = "health")]
pub(crate) fn health_config(config: &KeelConfig) -> keel_health::HealthConfig {
    config.health_config()
}

/// The managed client's settings for `config`: start-up retries follow `retry`, the reconnect
/// queue follows `pool.reconnect_queue`, a queued request waits at most the server selection
/// timeout (or the overall deadline, if shorter), and the serverless preset connects lazily.
pub(crate) fn managed_settings(config: &KeelConfig) -> ManagedSettings {
    let mut settings = ManagedSettings::default();
    settings.connect_attempts = config.retry.max_attempts.max(1);
    settings.connect_backoff = config.retry.initial_backoff;
    settings.connect_backoff_max = config.retry.max_backoff;
    settings.lazy_connect = config.lazy_connect;
    settings.reconnect_queue = usize::try_from(config.pool.reconnect_queue).unwrap_or(usize::MAX);
    // A queued request waits through an election at most `timeouts.election_wait` (or the
    // deadline, if shorter), through an outage where no member answers `timeouts.outage_grace`.
    settings.reconnect_wait = config.timeouts.election_wait.min(config.timeouts.deadline);
    settings.outage_grace = config.timeouts.outage_grace;
    settings
}

/// The checkout limit for `config`: as many operations at once as the pool holds, at most
/// `pool.max_waiting` waiting, each for at most `timeouts.checkout_wait`.
pub(crate) fn checkout_limit(config: &KeelConfig) -> CheckoutLimitLayer {
    config.pool.checkout_limit(config.timeouts.checkout_wait)
}

/// Connects as `config` says: maps it to driver options (resolving `mongodb+srv` URIs), then
/// validates the connection like [`ManagedClient::connect_with`].
pub(crate) async fn connect(config: &KeelConfig) -> Result<ManagedClient, Error> {
    let options = config.to_client_options().await?;
    ManagedClient::connect_with(options, managed_settings(config)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use keel_pool_core::ConnectionState;
    use keel_testkit::TestServer;

    use super::*;

    #[tokio::test]
    async fn connect_through_keel_config() {
        let server = TestServer::start().await.unwrap();
        let config = KeelConfig::development(server.uri()).unwrap();
        let client = connect(&config).await.unwrap();
        assert_eq!(client.state(), ConnectionState::Connected);
        assert_eq!(
            client.settings().reconnect_queue,
            config.pool.reconnect_queue as usize
        );
    }

    #[test]
    fn start_up_and_reconnect_follow_the_configuration() {
        let mut config = KeelConfig::development("mongodb://localhost").unwrap();
        config.retry.max_attempts = 0;
        config.timeouts.deadline = Duration::from_secs(3);
        let settings = managed_settings(&config);
        assert_eq!(settings.connect_attempts, 1);
        assert_eq!(settings.connect_backoff, config.retry.initial_backoff);
        assert_eq!(settings.reconnect_wait, Duration::from_secs(3));
    }
}
