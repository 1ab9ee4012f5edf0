//! `HealthHandle`: the cheap, cloneable view of the monitor that gates, probes and the
//! dashboard read.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use keel_breaker::BreakerState;
use keel_pool_core::{ConnectionState, PoolStats};
use tokio::sync::watch;

use crate::{
    AlertEvent, AlertKind, ComponentHealth, ComponentReporter, HealthReport, HealthStatus,
    OperationStats, Transition, component::Components, target::HealthTarget,
};

/// Recent alert events kept for the dashboard.
const RECENT_ALERTS: usize = 100;

/// Active alerts and the most recent transitions.
#[derive(Debug, Default)]
pub(crate) struct AlertLog {
    /// Keyed by kind and component, so every degraded component has its own active alert.
    active: BTreeMap<(AlertKind, Option<String>), AlertEvent>,
    recent: VecDeque<AlertEvent>,
}

impl AlertLog {
    pub(crate) fn record(&mut self, event: &AlertEvent) {
        match event.transition {
            Transition::Raised => {
                self.active
                    .insert((event.kind, event.component.clone()), event.clone());
            }
            Transition::Cleared => {
                self.active.remove(&(event.kind, event.component.clone()));
            }
        }
        if self.recent.len() == RECENT_ALERTS {
            self.recent.pop_back();
        }
        self.recent.push_front(event.clone());
    }
}

/// A view of a running [`HealthMonitor`](crate::HealthMonitor): the latest report, its changes,
/// alerts, and the live connection, pool and breaker state.
///
/// Cheap to clone; every clone sees the same monitor.
#[derive(Clone)]
pub struct HealthHandle {
    pub(crate) report: watch::Receiver<HealthReport>,
    pub(crate) alerts: Arc<Mutex<AlertLog>>,
    pub(crate) target: Arc<dyn HealthTarget>,
    pub(crate) breaker: Option<watch::Receiver<BreakerState>>,
    pub(crate) operations: Option<OperationStats>,
    pub(crate) interval: Duration,
    pub(crate) pool_max_size: u32,
    pub(crate) components: Arc<Components>,
}

impl std::fmt::Debug for HealthHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthHandle")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl HealthHandle {
    /// The latest report.
    pub fn report(&self) -> HealthReport {
        self.report.borrow().clone()
    }

    /// The latest status.
    pub fn status(&self) -> HealthStatus {
        self.report.borrow().status
    }

    /// A receiver that sees every new report.
    pub fn subscribe(&self) -> watch::Receiver<HealthReport> {
        self.report.clone()
    }

    /// Waits until the status satisfies `wanted`, at most `limit`; returns the report then, or
    /// `None` on time-out (or if the monitor stopped).
    ///
    /// ```no_run
    /// # async fn run(health: keel_health::HealthHandle) {
    /// use std::time::Duration;
    /// use keel_health::HealthStatus;
    /// let report = health
    ///     .wait_for(|s| s == HealthStatus::Healthy, Duration::from_secs(10))
    ///     .await;
    /// # }
    /// ```
    pub async fn wait_for(
        &self,
        wanted: impl Fn(HealthStatus) -> bool,
        limit: Duration,
    ) -> Option<HealthReport> {
        let mut receiver = self.report.clone();
        let waiting = receiver.wait_for(|r| wanted(r.status));
        match tokio::time::timeout(limit, waiting).await {
            Ok(Ok(report)) => Some(report.clone()),
            _ => None,
        }
    }

    /// Registers a health check that lives outside keel-health (a consumer, a queue, a
    /// schedule) under `name`, e.g. `"change_stream:orders"`. It starts healthy; see
    /// [`ComponentReporter`] for what a degraded component does to the report and the alerts.
    ///
    /// ```no_run
    /// # fn run(health: keel_health::HealthHandle) {
    /// let reporter = health.component("backup:nightly");
    /// reporter.degraded("the last scheduled backup failed: the server was unreachable");
    /// assert_eq!(health.components()[0].name, "backup:nightly");
    /// # }
    /// ```
    pub fn component(&self, name: impl Into<String>) -> ComponentReporter {
        self.components.register(name.into())
    }

    /// Every registered component and its state, in registration order.
    pub fn components(&self) -> Vec<ComponentHealth> {
        self.components.snapshot().into_values().collect()
    }

    /// Alerts raised now (their raise events), in [`AlertKind`] order.
    pub fn active_alerts(&self) -> Vec<AlertEvent> {
        let log = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        log.active.values().cloned().collect()
    }

    /// The latest alert transitions, newest first (at most 100).
    pub fn recent_alerts(&self) -> Vec<AlertEvent> {
        let log = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        log.recent.iter().cloned().collect()
    }

    /// The connection state now (not only at the last check).
    pub fn connection(&self) -> ConnectionState {
        *self.target.connection().borrow()
    }

    /// Pool numbers now.
    pub fn pool_stats(&self) -> PoolStats {
        self.target.pool_stats()
    }

    /// The pool's maximum size the monitor assumes (for saturation).
    pub fn pool_max_size(&self) -> u32 {
        self.pool_max_size
    }

    /// The breaker's state now, when the monitor watches one.
    pub fn breaker(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(|b| *b.borrow())
    }

    /// The operation statistics the monitor reads, if any.
    pub fn operations(&self) -> Option<&OperationStats> {
        self.operations.as_ref()
    }

    /// Time between checks.
    pub fn check_interval(&self) -> Duration {
        self.interval
    }
}
