//! The monitor's task: schedules checks, listens to state changes, publishes reports, sends
//! alerts and asks for resets.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use keel_breaker::BreakerState;
use keel_core::ErrorClass;
use keel_pool_core::ConnectionState;
use tokio::{sync::watch, time::Instant};

use crate::{
    AlertEvent, AlertKind, CheckResult, ComponentHealth, HealthConfig, HealthReport, HealthStatus,
    OperationStats, Transition,
    alert::Dispatcher,
    component::Components,
    metrics::names,
    monitor::{
        evaluate::{Evaluator, Inputs},
        handle::AlertLog,
        jittered,
    },
    target::HealthTarget,
};

type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;

pub(super) struct Loop {
    pub(super) evaluator: Evaluator,
    pub(super) config: HealthConfig,
    pub(super) target: Arc<dyn HealthTarget>,
    pub(super) connection: watch::Receiver<ConnectionState>,
    pub(super) breaker: Option<watch::Receiver<BreakerState>>,
    pub(super) operations: Option<OperationStats>,
    pub(super) dispatcher: Dispatcher,
    pub(super) alerts: Arc<Mutex<AlertLog>>,
    pub(super) sender: watch::Sender<HealthReport>,
    pub(super) components: Arc<Components>,
    pub(super) component_changes: watch::Receiver<u64>,
    /// The components as of the last change handled, to turn changes into alert transitions.
    pub(super) last_components: BTreeMap<u64, ComponentHealth>,
}

impl Loop {
    pub(super) async fn run(mut self) {
        for kind in AlertKind::ALL {
            metrics::gauge!(names::ALERT_ACTIVE, "alert" => kind.as_str()).set(0.0);
        }
        let mut next = Instant::now();
        let mut check: Option<(Instant, CheckFuture)> = None;
        let mut connection_open = true;
        let mut breaker_open = self.breaker.is_some();
        let mut components_open = true;
        loop {
            tokio::select! {
                result = poll_check(&mut check) => {
                    let started = check.take().map_or_else(Instant::now, |(s, _)| s);
                    self.on_check(result);
                    let interval = jittered(
                        self.config.interval,
                        self.config.jitter,
                        rand::random::<f64>(),
                    );
                    // Measured from the start of the check, but never before it ended.
                    next = (started + interval).max(Instant::now());
                }
                () = tokio::time::sleep_until(next), if check.is_none() => {
                    check = Some((Instant::now(), self.start_check()));
                }
                changed = self.connection.changed(), if connection_open => {
                    // The client was dropped: keep checking; pings will say what is left.
                    connection_open = changed.is_ok();
                    self.publish();
                }
                changed = wait_breaker(&mut self.breaker), if breaker_open => {
                    breaker_open = changed;
                    self.publish();
                }
                changed = self.component_changes.changed(), if components_open => {
                    components_open = changed.is_ok();
                    self.on_components();
                    self.publish();
                }
            }
        }
    }

    fn start_check(&self) -> CheckFuture {
        let ping = self.target.ping();
        let limit = self.config.check_timeout;
        Box::pin(async move {
            let start = Instant::now();
            let error = match tokio::time::timeout(limit, ping).await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.class()),
                Err(_) => Some(ErrorClass::Timeout),
            };
            CheckResult {
                latency: start.elapsed(),
                error,
            }
        })
    }

    fn inputs(&self) -> Inputs {
        let ops = self.operations.as_ref().map_or((0, 0), |stats| {
            let snapshot = stats.snapshot();
            (snapshot.total, snapshot.infrastructure_errors)
        });
        Inputs {
            connection: *self.connection.borrow(),
            breaker: self.breaker.as_ref().map(|b| *b.borrow()),
            pool: self.target.pool_stats(),
            ops,
            components: self.components.snapshot().into_values().collect(),
        }
    }

    fn on_check(&mut self, result: CheckResult) {
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!(names::CHECKS, "outcome" => outcome).increment(1);
        metrics::histogram!(names::CHECK_DURATION).record(result.latency.as_secs_f64());
        if let Some(class) = result.error {
            tracing::debug!(target: "keel_health", class = class.as_str(), "keel health check failed");
        }
        let inputs = self.inputs();
        let step = self.evaluator.check(Instant::now(), result, &inputs);
        for event in &step.events {
            let active = event.transition == Transition::Raised;
            metrics::gauge!(names::ALERT_ACTIVE, "alert" => event.kind.as_str()).set(if active {
                1.0
            } else {
                0.0
            });
            self.emit(event);
        }
        if step.recover {
            self.recover();
        }
        self.publish();
    }

    /// Records and delivers one alert transition.
    fn emit(&self, event: &AlertEvent) {
        metrics::counter!(
            names::ALERT_TRANSITIONS,
            "alert" => event.kind.as_str(),
            "transition" => event.transition.as_str()
        )
        .increment(1);
        self.alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(event);
        self.dispatcher.dispatch(event);
    }

    /// Turns component changes into alerts: raised on healthy → degraded, cleared on degraded →
    /// healthy or when a degraded component is removed. A changed sentence while degraded is
    /// shown in the report but raises nothing new.
    fn on_components(&mut self) {
        let now = self.components.snapshot();
        let at = SystemTime::now();
        let was_degraded = |id: &u64| {
            self.last_components
                .get(id)
                .is_some_and(|c| c.is_degraded())
        };
        let mut events = Vec::new();
        for (id, component) in &now {
            let active = component.is_degraded();
            metrics::gauge!(names::COMPONENT_DEGRADED, "component" => component.name.clone())
                .set(if active { 1.0 } else { 0.0 });
            if active != was_degraded(id) {
                events.push(component_event(component, active, at));
            }
        }
        for (id, gone) in &self.last_components {
            if !now.contains_key(id) {
                if gone.is_degraded() {
                    events.push(component_event(gone, false, at));
                }
                metrics::gauge!(names::COMPONENT_DEGRADED, "component" => gone.name.clone())
                    .set(0.0);
            }
        }
        let any = now.values().any(ComponentHealth::is_degraded);
        metrics::gauge!(names::ALERT_ACTIVE, "alert" => AlertKind::ComponentDegraded.as_str())
            .set(if any { 1.0 } else { 0.0 });
        for event in &events {
            self.emit(event);
        }
        self.last_components = now;
    }

    fn recover(&mut self) {
        match self.target.reset() {
            Ok(()) => {
                self.evaluator.recovered();
                metrics::counter!(names::RECOVERIES, "outcome" => "reset").increment(1);
                tracing::warn!(
                    target: "keel_health",
                    "keel health: checks keep failing with no driver progress; reset the client"
                );
            }
            Err(refused) => {
                metrics::counter!(names::RECOVERIES, "outcome" => "refused").increment(1);
                tracing::warn!(target: "keel_health", reason = %refused, "keel health: reset refused");
            }
        }
    }

    fn publish(&mut self) {
        let report = self.evaluator.report(&self.inputs());
        metrics::gauge!(names::STATUS).set(report.status.gauge_value());
        let before = self.sender.borrow().status;
        if before != report.status {
            let reasons: Vec<String> = report.reasons.iter().map(ToString::to_string).collect();
            if report.status == HealthStatus::Healthy {
                tracing::info!(target: "keel_health", from = before.as_str(), to = report.status.as_str(), "keel health changed");
            } else {
                tracing::warn!(target: "keel_health", from = before.as_str(), to = report.status.as_str(), reasons = ?reasons, "keel health changed");
            }
        }
        self.sender.send_if_modified(|current| {
            if *current == report {
                false
            } else {
                *current = report;
                true
            }
        });
    }
}

fn component_event(component: &ComponentHealth, raised: bool, at: SystemTime) -> AlertEvent {
    AlertEvent {
        kind: AlertKind::ComponentDegraded,
        transition: if raised {
            Transition::Raised
        } else {
            Transition::Cleared
        },
        value: component
            .detail
            .clone()
            .unwrap_or_else(|| "healthy".to_owned()),
        threshold: String::new(),
        component: Some(component.name.clone()),
        at,
    }
}

async fn poll_check(check: &mut Option<(Instant, CheckFuture)>) -> CheckResult {
    match check {
        Some((_, future)) => future.await,
        None => std::future::pending().await,
    }
}

/// Waits for a breaker change; `false` once its sender is gone.
async fn wait_breaker(breaker: &mut Option<watch::Receiver<BreakerState>>) -> bool {
    match breaker {
        Some(receiver) => receiver.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
