//! `KeelBuilder`: chooses the layers, connects, and wires shared state between them.

use keel_config::KeelConfig;
use keel_core::Error;

use crate::{Keel, stack};

/// Builds a [`Keel`]: every layer is on by default; turn off the ones you do not want.
///
/// ```no_run
/// # async fn run() -> Result<(), keel_core::Error> {
/// let config = keel_config::KeelConfig::for_uri("mongodb://127.0.0.1:27017")?;
/// let keel = mongokeel::Keel::builder(config)
///     .without_breaker()
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct KeelBuilder {
    config: KeelConfig,
    #[cfg(feature = "retry")]
    retry: bool,
    #[cfg(feature = "breaker")]
    breaker: BreakerChoice,
    #[cfg(feature = "health")]
    health: crate::health::HealthChoice,
}

#[cfg(feature = "breaker")]
#[derive(Debug)]
enum BreakerChoice {
    Own,
    Shared(keel_breaker::Breaker),
    Off,
}

impl KeelBuilder {
    pub(crate) fn new(config: KeelConfig) -> Self {
        Self {
            config,
            #[cfg(feature = "retry")]
            retry: true,
            #[cfg(feature = "breaker")]
            breaker: BreakerChoice::Own,
            #[cfg(feature = "health")]
            health: crate::health::HealthChoice::default(),
        }
    }

    /// Monitors health with `config` instead of the defaults derived from Keel's configuration.
    #[cfg(feature = "health")]
    pub fn health_config(mut self, config: keel_health::HealthConfig) -> Self {
        self.health.config = Some(config);
        self
    }

    /// Sends health alerts to `sink` too (alerts are always logged with `tracing`).
    #[cfg(feature = "health")]
    pub fn alert_sink(mut self, sink: impl keel_health::AlertSink) -> Self {
        self.health.sinks.push(Box::new(move |b| b.sink(sink)));
        self
    }

    /// Builds the stack without the health gate: requests reach the breaker even while the
    /// monitor reports `Unhealthy` (the monitor, its alerts and the metrics stay).
    #[cfg(feature = "health")]
    pub fn without_health_gate(mut self) -> Self {
        self.health.gate = false;
        self
    }

    /// Builds the stack without the retry layer.
    #[cfg(feature = "retry")]
    pub fn without_retry(mut self) -> Self {
        self.retry = false;
        self
    }

    /// Builds the stack without a circuit breaker.
    #[cfg(feature = "breaker")]
    pub fn without_breaker(mut self) -> Self {
        self.breaker = BreakerChoice::Off;
        self
    }

    /// Uses `breaker` (shared with other clients of the same cluster) instead of a new one.
    #[cfg(feature = "breaker")]
    pub fn shared_breaker(mut self, breaker: keel_breaker::Breaker) -> Self {
        self.breaker = BreakerChoice::Shared(breaker);
        self
    }

    /// Connects (validating the connection unless the preset is lazy) and assembles the stack.
    ///
    /// Fails with a `Config` error when a layer's settings are invalid, or with the classified
    /// connection error after the configured start-up attempts.
    pub async fn build(self) -> Result<Keel, Error> {
        #[cfg(feature = "retry")]
        let retry = if self.retry {
            let config = crate::layers::retry_config(&self.config);
            Some(
                keel_retry::RetryLayer::mongodb(config)
                    .map_err(|e| Error::config(format!("retry settings: {e}")))?
                    // `Keel::run` gives every operation the deadline, and the attempt timeout
                    // below the retry layer ends each attempt by it.
                    .with_deadline_enforced_below(),
            )
        } else {
            None
        };
        #[cfg(feature = "breaker")]
        let breaker = match self.breaker {
            BreakerChoice::Own => {
                let config = crate::layers::breaker_config(&self.config);
                let name = self
                    .config
                    .app_name
                    .clone()
                    .unwrap_or_else(|| "mongodb".to_owned());
                Some(
                    keel_breaker::Breaker::new(name, config)
                        .map_err(|e| Error::config(format!("breaker settings: {e}")))?,
                )
            }
            BreakerChoice::Shared(breaker) => Some(breaker),
            BreakerChoice::Off => None,
        };
        let client = crate::layers::connect(&self.config).await?;
        #[cfg(feature = "health")]
        let health = self.health.start(
            &self.config,
            &client,
            #[cfg(feature = "breaker")]
            breaker.as_ref(),
        )?;
        let choices = stack::Choices {
            #[cfg(feature = "retry")]
            retry,
            #[cfg(feature = "breaker")]
            breaker,
            #[cfg(feature = "health")]
            gate: health.gate.clone(),
            #[cfg(feature = "health")]
            operations: health.operations.clone(),
        };
        let stack = stack::build(&self.config, &client, &choices);
        #[cfg(feature = "breaker")]
        if let Some(breaker) = &choices.breaker {
            tokio::spawn(close_breaker_on_recovery(
                client.subscribe(),
                breaker.clone(),
            ));
        }
        Ok(Keel::from_parts(
            client,
            stack,
            self.config,
            #[cfg(feature = "breaker")]
            choices.breaker,
            #[cfg(feature = "health")]
            health,
        ))
    }
}

/// When the connection comes back, the breaker need not wait out its open time: pool-core has
/// seen a server answer, so the next call may go through. Operator-forced states are left alone.
#[cfg(feature = "breaker")]
async fn close_breaker_on_recovery(
    mut state: tokio::sync::watch::Receiver<keel_pool_core::ConnectionState>,
    breaker: keel_breaker::Breaker,
) {
    use keel_breaker::BreakerState;
    use keel_pool_core::ConnectionState;
    while state.changed().await.is_ok() {
        let now = *state.borrow_and_update();
        if now == ConnectionState::Closed {
            return;
        }
        if now == ConnectionState::Connected && breaker.state() == BreakerState::Open {
            tracing::info!(
                breaker = breaker.name(),
                "database reachable again: closing the breaker"
            );
            breaker.reset();
        }
    }
}
