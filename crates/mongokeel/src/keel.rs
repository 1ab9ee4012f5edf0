//! `Keel`: the cloneable handle users call, holding the managed client and the layer stack.

use std::sync::Arc;

use keel_config::KeelConfig;
use keel_core::{Error, Operation};
use keel_pool_core::{ConnectionState, ManagedClient, ShutdownReport};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::watch;

use crate::{
    Collection, KeelBuilder,
    assembly::{Stack, TypedRequest},
};

/// A resilient MongoDB client: every call goes through Keel's layers to the driver.
///
/// Cheap to clone; clones share the client, the layers, the breaker and the retry budget.
///
/// ```no_run
/// # async fn run() -> Result<(), keel_core::Error> {
/// use mongodb::bson::{doc, Document};
/// let config = keel_config::KeelConfig::for_uri("mongodb://127.0.0.1:27017")?;
/// let keel = mongokeel::Keel::builder(config).build().await?;
/// let users = keel.collection::<Document>("app", "users");
/// users.insert_one(doc! { "name": "Ada" }).await?;
/// let ada = users.find_one(doc! { "name": "Ada" }).await?;
/// assert!(ada.is_some());
/// keel.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Keel {
    inner: Arc<Inner>,
}

struct Inner {
    client: ManagedClient,
    stack: Stack,
    config: KeelConfig,
    #[allow(dead_code, reason = "empty without the optional layers")]
    handles: Handles,
}

/// What the optional layers give the handle to read or wait on.
pub(crate) struct Handles {
    #[cfg(feature = "retry")]
    pub(crate) retry: Option<keel_retry::RetryStats>,
    #[cfg(feature = "breaker")]
    pub(crate) breaker: Option<keel_breaker::Breaker>,
    #[cfg(feature = "health")]
    pub(crate) health: crate::health::Health,
}

impl std::fmt::Debug for Keel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keel")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Keel {
    /// Starts building a client from `config`.
    pub fn builder(config: KeelConfig) -> KeelBuilder {
        KeelBuilder::new(config)
    }

    pub(crate) fn from_parts(
        client: ManagedClient,
        stack: Stack,
        config: KeelConfig,
        handles: Handles,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                stack,
                config,
                handles,
            }),
        }
    }

    /// Runs any operation through the stack, by the operation's own deadline or the configured
    /// overall deadline (`timeouts.deadline`, counted from now), whichever comes first.
    ///
    /// ```no_run
    /// # async fn run(keel: mongokeel::Keel) -> Result<(), keel_core::Error> {
    /// use keel_core::Operation;
    /// let names = keel
    ///     .run(Operation::read("admin.list_databases", |c: mongodb::Client| async move {
    ///         c.list_database_names().await
    ///     }))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn run<T: Send + 'static>(&self, operation: Operation<T>) -> Result<T, Error> {
        crate::assembly::run(&self.inner.stack, &self.inner.config, operation).await
    }

    /// Runs an operation built as the stack's request (`Collection`'s methods), like
    /// [`run`](Self::run).
    pub(crate) async fn run_typed<T: 'static>(
        &self,
        operation: TypedRequest<T>,
    ) -> Result<T, Error> {
        crate::assembly::run_typed(&self.inner.stack, &self.inner.config, operation).await
    }

    /// A typed collection whose methods build the right operation kind for each call.
    pub fn collection<T>(&self, database: &str, collection: &str) -> Collection<T>
    where
        T: Serialize + DeserializeOwned + Unpin + Send + Sync + 'static,
    {
        Collection::new(self.clone(), database, collection)
    }

    /// The managed client (state, pool statistics, reset, shutdown).
    pub fn client(&self) -> &ManagedClient {
        &self.inner.client
    }

    /// The configuration in force.
    pub fn config(&self) -> &KeelConfig {
        &self.inner.config
    }

    /// The connection state now.
    pub fn state(&self) -> ConnectionState {
        self.inner.client.state()
    }

    /// Every change of the connection state.
    pub fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.inner.client.subscribe()
    }

    /// Waits until calls are let through again: the client is connected, the breaker (when
    /// there is one) is not open, and health (with the `health` feature) is not unhealthy. For a
    /// start-up probe or after an outage; bound it with a timeout. A breaker an operator forced
    /// open keeps it waiting. Fails with `ShuttingDown` once the client is closed.
    ///
    /// It says calls are let through at that moment, not that the next call succeeds: another
    /// task's call that fails right after (say, on a connection from before the outage) can
    /// open the breaker again, and a call then fails fast with `CircuitOpen`.
    ///
    /// ```no_run
    /// # async fn run(keel: mongokeel::Keel) -> Result<(), Box<dyn std::error::Error>> {
    /// tokio::time::timeout(std::time::Duration::from_secs(30), keel.ready()).await??;
    /// # Ok(()) }
    /// ```
    pub async fn ready(&self) -> Result<(), Error> {
        loop {
            let mut state = self.subscribe();
            let connected = state
                .wait_for(|s| matches!(s, ConnectionState::Connected | ConnectionState::Closed))
                .await
                .map(|s| *s);
            if !matches!(connected, Ok(ConnectionState::Connected)) {
                return Err(Error::shutting_down());
            }
            #[cfg(feature = "breaker")]
            if let Some(breaker) = self.breaker() {
                use keel_breaker::BreakerState;
                let mut breaker = breaker.subscribe();
                // The sender lives as long as the breaker we hold.
                let _ = breaker
                    .wait_for(|s| !matches!(s, BreakerState::Open | BreakerState::ForcedOpen))
                    .await;
            }
            #[cfg(feature = "health")]
            {
                let mut health = self.health().subscribe();
                let _ = health
                    .wait_for(|r| r.status != keel_health::HealthStatus::Unhealthy)
                    .await;
            }
            // Each wait above may have let another condition change again (the connection
            // dropping, the breaker reopening while health caught up): return only when all
            // three hold at the same moment.
            if self.lets_calls_through() {
                return Ok(());
            }
        }
    }

    /// Whether, right now, the client is connected, the breaker not open and health not
    /// unhealthy: what [`ready`](Keel::ready) waits for.
    fn lets_calls_through(&self) -> bool {
        if self.state() != ConnectionState::Connected {
            return false;
        }
        #[cfg(feature = "breaker")]
        if let Some(breaker) = self.breaker() {
            use keel_breaker::BreakerState;
            if matches!(
                breaker.state(),
                BreakerState::Open | BreakerState::ForcedOpen
            ) {
                return false;
            }
        }
        #[cfg(feature = "health")]
        if self.health().report().status == keel_health::HealthStatus::Unhealthy {
            return false;
        }
        true
    }

    /// The circuit breaker, when the stack has one.
    #[cfg(feature = "breaker")]
    pub fn breaker(&self) -> Option<&keel_breaker::Breaker> {
        self.inner.handles.breaker.as_ref()
    }

    /// The retry layer's counters (attempts, retries, give-ups by reason such as an exhausted
    /// budget), when the stack has one. They need no metrics recorder; the breaker's are
    /// [`keel_breaker::Breaker::stats`].
    ///
    /// ```no_run
    /// # fn show(keel: &mongokeel::Keel) {
    /// if let Some(retries) = keel.retry_stats() {
    ///     println!("{} retries so far", retries.snapshot().retries);
    /// }
    /// # }
    /// ```
    #[cfg(feature = "retry")]
    pub fn retry_stats(&self) -> Option<&keel_retry::RetryStats> {
        self.inner.handles.retry.as_ref()
    }

    /// The health monitor's handle: status with reasons, alerts, and what the dashboard and
    /// the Kubernetes probes of `keel_health` serve.
    ///
    /// ```no_run
    /// # async fn run(keel: mongokeel::Keel) -> Result<(), Box<dyn std::error::Error>> {
    /// use keel_health::dashboard::{Dashboard, DashboardConfig};
    /// let dashboard = Dashboard::new(keel.health().clone(), DashboardConfig::default());
    /// let serving = dashboard.serve().await?;
    /// println!("dashboard at {}", serving.url());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "health")]
    pub fn health(&self) -> &keel_health::HealthHandle {
        &self.inner.handles.health.handle
    }

    /// Counts, errors by class and latency of every operation run through this handle.
    #[cfg(feature = "health")]
    pub fn operation_stats(&self) -> &keel_health::OperationStats {
        &self.inner.handles.health.operations
    }

    /// Graceful shutdown of the managed client (see [`ManagedClient::shutdown`]); with the
    /// `health` feature, the health checks stop first.
    pub async fn shutdown(&self) -> ShutdownReport {
        #[cfg(feature = "health")]
        {
            let monitor = self
                .inner
                .handles
                .health
                .monitor
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(monitor) = monitor {
                monitor.shutdown().await;
            }
        }
        self.inner.client.shutdown().await
    }
}
