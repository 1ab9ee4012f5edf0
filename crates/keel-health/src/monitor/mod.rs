//! The health monitor: pings on an interval (with jitter), combines the result with pool-core's
//! connection state and the breaker's state, raises and clears alerts, and recovers.

mod evaluate;
mod handle;
mod run;
mod window;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_breaker::{Breaker, BreakerState};
use tokio::{sync::watch, task::JoinHandle};

pub use handle::HealthHandle;
pub(crate) use window::percentile;

use crate::{
    AlertSink, ConfigError, HealthConfig, HealthReport, OperationStats, alert::Dispatcher,
    component::Components, target::HealthTarget,
};

/// A running health monitor. Dropping it (or [`shutdown`](Self::shutdown)) stops the checks;
/// handles then keep the last report.
///
/// ```no_run
/// # async fn run(client: keel_pool_core::ManagedClient) -> Result<(), keel_health::ConfigError> {
/// use keel_health::{ChannelSink, HealthConfig, HealthMonitor, LogSink};
/// let (alerts, mut receiver) = ChannelSink::new(16);
/// let monitor = HealthMonitor::builder(client, HealthConfig::default())
///     .sink(LogSink)
///     .sink(alerts)
///     .spawn()?;
/// let health = monitor.handle();
/// println!("{}", health.status());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "the monitor stops when dropped"]
pub struct HealthMonitor {
    handle: HealthHandle,
    task: JoinHandle<()>,
}

impl HealthMonitor {
    /// Starts building a monitor of `target` (usually a `ManagedClient`).
    pub fn builder(target: impl HealthTarget, config: HealthConfig) -> HealthMonitorBuilder {
        HealthMonitorBuilder {
            target: Arc::new(target),
            config,
            breaker: None,
            operations: None,
            sinks: Vec::new(),
        }
    }

    /// A handle for gates, probes and the dashboard.
    pub fn handle(&self) -> HealthHandle {
        self.handle.clone()
    }

    /// Stops the checks and waits for the task to end.
    pub async fn shutdown(self) {
        self.task.abort();
        // The only error is the cancellation just asked for.
        let _ = (&mut { self }.task).await;
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options of a [`HealthMonitor`].
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct HealthMonitorBuilder {
    target: Arc<dyn HealthTarget>,
    config: HealthConfig,
    breaker: Option<watch::Receiver<BreakerState>>,
    operations: Option<OperationStats>,
    sinks: Vec<Arc<dyn AlertSink>>,
}

impl std::fmt::Debug for HealthMonitorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthMonitorBuilder")
            .field("config", &self.config)
            .field("sinks", &self.sinks.len())
            .finish_non_exhaustive()
    }
}

impl HealthMonitorBuilder {
    /// Watches this circuit breaker: open means unhealthy, half-open degraded.
    pub fn breaker(self, breaker: &Breaker) -> Self {
        self.breaker_state(breaker.subscribe())
    }

    /// Watches a breaker state channel (e.g. `Breaker::subscribe()` of a breaker owned
    /// elsewhere).
    pub fn breaker_state(mut self, state: watch::Receiver<BreakerState>) -> Self {
        self.breaker = Some(state);
        self
    }

    /// Counts these operations' infrastructure errors in the error rate (and shows them on the
    /// dashboard).
    pub fn operations(mut self, stats: OperationStats) -> Self {
        self.operations = Some(stats);
        self
    }

    /// Sends alerts to this sink too.
    pub fn sink(mut self, sink: impl AlertSink) -> Self {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// Validates the configuration and starts checking (the first check runs at once).
    /// Must be called within a Tokio runtime.
    pub fn spawn(self) -> Result<HealthMonitor, ConfigError> {
        self.config.validate()?;
        let connection = self.target.connection();
        let breaker_now = self.breaker.as_ref().map(|b| *b.borrow());
        let initial = HealthReport::starting(*connection.borrow(), breaker_now);
        let (sender, receiver) = watch::channel(initial);
        let alerts = Arc::new(Mutex::new(handle::AlertLog::default()));
        let components = Components::new();
        let handle = HealthHandle {
            report: receiver,
            alerts: Arc::clone(&alerts),
            target: Arc::clone(&self.target),
            breaker: self.breaker.clone(),
            operations: self.operations.clone(),
            interval: self.config.interval,
            pool_max_size: self.config.pool_max_size,
            components: Arc::clone(&components),
        };
        let task = tokio::spawn(
            run::Loop {
                evaluator: evaluate::Evaluator::new(self.config.clone()),
                config: self.config,
                target: self.target,
                connection,
                breaker: self.breaker,
                operations: self.operations,
                dispatcher: Dispatcher::spawn(self.sinks),
                alerts,
                sender,
                component_changes: components.subscribe(),
                components,
                last_components: std::collections::BTreeMap::new(),
            }
            .run(),
        );
        Ok(HealthMonitor { handle, task })
    }
}

/// `interval` spread by `±jitter` (a fraction) using `unit`, a uniform number in `[0, 1)`.
pub(crate) fn jittered(interval: Duration, jitter: f64, unit: f64) -> Duration {
    let factor = 1.0 + jitter * (2.0 * unit - 1.0);
    interval.mul_f64(factor.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bounds() {
        let interval = Duration::from_secs(10);
        assert_eq!(jittered(interval, 0.1, 0.0), Duration::from_secs(9));
        assert_eq!(jittered(interval, 0.1, 0.5), interval);
        assert!(jittered(interval, 0.1, 0.999_999) < Duration::from_secs(11));
        assert_eq!(jittered(interval, 0.0, 0.9), interval);
    }
}
