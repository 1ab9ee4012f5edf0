//! `KeelBuilder`: chooses the layers, connects, and wires shared state between them; the order
//! they run in is the assembly's (`assembly::LAYERS`).

use keel_config::KeelConfig;
use keel_core::Error;

use crate::{
    Keel,
    assembly::{Assembly, UserLayer, UserLayers},
};

/// Builds a [`Keel`]: every layer is on by default; turn off the ones you do not want, and add
/// your own `tower` layers around the whole call or around each attempt.
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
    retry: bool,
    breaker: bool,
    #[cfg(feature = "breaker")]
    shared_breaker: Option<keel_breaker::Breaker>,
    #[cfg(feature = "health")]
    health: crate::health::HealthChoice,
    around_call: UserLayers,
    around_attempt: UserLayers,
}

impl KeelBuilder {
    pub(crate) fn new(config: KeelConfig) -> Self {
        Self {
            config,
            retry: true,
            breaker: true,
            #[cfg(feature = "breaker")]
            shared_breaker: None,
            #[cfg(feature = "health")]
            health: crate::health::HealthChoice::default(),
            around_call: UserLayers::default(),
            around_attempt: UserLayers::default(),
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

    /// Builds the stack without the retry layer (a stack built without the `retry` feature has
    /// none anyway).
    pub fn without_retry(mut self) -> Self {
        self.retry = false;
        self
    }

    /// Builds the stack without a circuit breaker (a stack built without the `breaker`
    /// feature has none anyway).
    pub fn without_breaker(mut self) -> Self {
        self.breaker = false;
        self
    }

    /// Uses `breaker` (shared with other clients of the same cluster) instead of a new one.
    #[cfg(feature = "breaker")]
    pub fn shared_breaker(mut self, breaker: keel_breaker::Breaker) -> Self {
        self.breaker = true;
        self.shared_breaker = Some(breaker);
        self
    }

    /// Adds `layer` around the whole call, above every Keel layer: it sees each call once, as
    /// the caller does (the final answer, after retries), so it fits a per-process rate limit,
    /// a span per operation or a log line per call. Layers added first are outermost.
    ///
    /// The layer is any [`UserLayer`]: it wraps a [`KeelService`](crate::KeelService), whose
    /// requests are the caller's operation with its name, kind and deadline; a layer written
    /// for any `Service<Operation<T>>` fits.
    ///
    /// ```no_run
    /// # async fn run(config: mongokeel::KeelConfig) -> Result<(), keel_core::Error> {
    /// use tower::limit::ConcurrencyLimitLayer;
    /// let keel = mongokeel::Keel::builder(config)
    ///     .layer_around_call(ConcurrencyLimitLayer::new(64))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn layer_around_call(mut self, layer: impl UserLayer) -> Self {
        self.around_call.push(layer);
        self
    }

    /// Adds `layer` around each attempt, between the retry layer and the attempt timeout: it
    /// sees every attempt of a call (a span per attempt, as keel-health's `OtelAttemptLayer`
    /// makes). Layers added first are outermost. See
    /// [`layer_around_call`](Self::layer_around_call) for the types.
    pub fn layer_around_attempt(mut self, layer: impl UserLayer) -> Self {
        self.around_attempt.push(layer);
        self
    }

    /// Connects (validating the connection unless the preset is lazy) and assembles the stack.
    ///
    /// Fails with a `Config` error when a layer's settings are invalid, or with the classified
    /// connection error after the configured start-up attempts.
    pub async fn build(self) -> Result<Keel, Error> {
        #[allow(unused_mut, reason = "the optional layers set their parts")]
        let mut assembly = Assembly {
            around_call: self.around_call,
            around_attempt: self.around_attempt,
            ..Assembly::default()
        };
        // Read in every build: without the `breaker` feature there is no breaker to leave out.
        let _ = self.breaker;
        if self.retry {
            #[cfg(feature = "retry")]
            {
                let config = keel_retry::RetryConfig {
                    // The deadline is the request's (`assembly::deadline`), read by every layer.
                    total_timeout: None,
                    ..crate::layers::retry_config(&self.config)
                };
                let layer = keel_retry::RetryLayer::mongodb(config)
                    .map_err(|e| Error::config(format!("retry settings: {e}")))?;
                assembly.retry = Some(crate::assembly::RetryStage::new(layer));
            }
        }
        #[cfg(feature = "breaker")]
        let breaker = match (self.breaker, self.shared_breaker) {
            (false, _) => None,
            (true, Some(shared)) => Some(shared),
            (true, None) => {
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
        };
        let client = crate::layers::connect(&self.config).await?;
        #[cfg(feature = "breaker")]
        if let Some(breaker) = &breaker {
            assembly.breaker = Some(breaker.mongodb_layer());
            tokio::spawn(close_breaker_on_recovery(
                client.subscribe(),
                breaker.clone(),
            ));
        }
        #[cfg(feature = "health")]
        let health = {
            let health = self.health.start(
                &self.config,
                &client,
                #[cfg(feature = "breaker")]
                breaker.as_ref(),
            )?;
            assembly.gate = health.gate.clone();
            assembly.metrics = Some(
                keel_health::OperationMetricsLayer::new().with_stats(health.operations.clone()),
            );
            health
        };
        let handles = crate::keel::Handles {
            #[cfg(feature = "retry")]
            retry: assembly.retry.as_ref().map(|r| r.stats().clone()),
            #[cfg(feature = "breaker")]
            breaker,
            #[cfg(feature = "health")]
            health,
        };
        let stack = assembly.assemble(&self.config, &client);
        Ok(Keel::from_parts(client, stack, self.config, handles))
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
