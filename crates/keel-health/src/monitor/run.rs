//! The monitor's task: schedules checks, listens to state changes, publishes reports, sends
//! alerts and asks for resets.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use keel_breaker::BreakerState;
use keel_core::ErrorClass;
use keel_pool_core::ConnectionState;
use tokio::{sync::watch, time::Instant};

use crate::{
    AlertKind, CheckResult, HealthConfig, HealthReport, HealthStatus, OperationStats, Transition,
    alert::Dispatcher,
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
        if step.recover {
            self.recover();
        }
        self.publish();
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
