//! The monitor's decisions, free of I/O: feed it checks and inputs, it returns the report, the
//! alert transitions and whether to recover. Kept synchronous so every rule is unit-testable.

use std::time::{Duration, SystemTime};

use keel_breaker::BreakerState;
use keel_pool_core::{ConnectionState, PoolStats};
use tokio::time::Instant;

use crate::{
    AlertEvent, AlertKind, CheckResult, ComponentHealth, HealthConfig, HealthReport, HealthStatus,
    Hysteresis, Reason, Transition, monitor::window::Window,
};

/// What the monitor reads besides its own checks.
#[derive(Clone, Debug)]
pub(crate) struct Inputs {
    pub(crate) connection: ConnectionState,
    pub(crate) breaker: Option<BreakerState>,
    pub(crate) pool: PoolStats,
    /// Cumulative operations and infrastructure errors (0, 0 without operation stats).
    pub(crate) ops: (u64, u64),
    /// Registered components, in registration order.
    pub(crate) components: Vec<ComponentHealth>,
}

/// Outcome of one check.
#[derive(Debug, Default)]
pub(crate) struct Step {
    pub(crate) events: Vec<AlertEvent>,
    pub(crate) recover: bool,
}

#[derive(Debug)]
pub(crate) struct Evaluator {
    config: HealthConfig,
    window: Window,
    latency: Hysteresis<Duration>,
    error_rate: Hysteresis<f64>,
    saturation: Hysteresis<f64>,
    failing: Hysteresis<u32>,
    consecutive_failures: u32,
    last_check: Option<CheckResult>,
    latency_p99: Option<Duration>,
    rate: Option<f64>,
    pool_saturation: Option<f64>,
    checks: u64,
    started: bool,
    recoveries: u64,
    ops_seen: (u64, u64),
    no_progress: u32,
    progress_marker: Option<u64>,
    last_recovery: Option<Instant>,
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

fn fmt_ratio(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

impl Evaluator {
    pub(crate) fn new(config: HealthConfig) -> Self {
        Self {
            window: Window::new(config.window, config.min_samples),
            latency: Hysteresis::new(config.latency),
            error_rate: Hysteresis::new(config.error_rate),
            saturation: Hysteresis::new(config.pool_saturation),
            failing: Hysteresis::new(config.failed_checks),
            consecutive_failures: 0,
            last_check: None,
            latency_p99: None,
            rate: None,
            pool_saturation: None,
            checks: 0,
            started: false,
            recoveries: 0,
            ops_seen: (0, 0),
            no_progress: 0,
            progress_marker: None,
            last_recovery: None,
            config,
        }
    }

    /// Takes one check into account.
    pub(crate) fn check(&mut self, now: Instant, check: CheckResult, inputs: &Inputs) -> Step {
        self.checks += 1;
        self.last_check = Some(check);
        if check.is_ok() {
            self.started = true;
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        let (ops, op_errors) = inputs.ops;
        let new_ops = ops.saturating_sub(self.ops_seen.0);
        let new_errors = op_errors.saturating_sub(self.ops_seen.1);
        self.ops_seen = inputs.ops;
        self.window
            .push(now, check.latency, !check.is_ok(), new_ops, new_errors);
        self.latency_p99 = self.window.latency_p99();
        self.rate = self.window.error_rate();
        // Pool sizes are far below 2^53: the conversions are exact.
        self.pool_saturation =
            Some(inputs.pool.in_use as f64 / f64::from(self.config.pool_max_size.max(1)));

        let mut step = Step::default();
        let at = SystemTime::now();
        let mut emit = |kind, transition: Option<Transition>, value: String, threshold: String| {
            if let Some(transition) = transition {
                step.events.push(AlertEvent {
                    kind,
                    transition,
                    value,
                    threshold,
                    component: None,
                    at,
                });
            }
        };
        let t = self.latency.observe(self.latency_p99);
        let (v, th) = (
            fmt_ms(self.latency_p99.unwrap_or_default()),
            self.level(
                t,
                |c| fmt_ms(c.latency.raise_at),
                |c| fmt_ms(c.latency.clear_at),
            ),
        );
        emit(AlertKind::LatencyHigh, t, v, th);
        let t = self.error_rate.observe(self.rate);
        let (v, th) = (
            fmt_ratio(self.rate.unwrap_or_default()),
            self.level(
                t,
                |c| fmt_ratio(c.error_rate.raise_at),
                |c| fmt_ratio(c.error_rate.clear_at),
            ),
        );
        emit(AlertKind::ErrorRateHigh, t, v, th);
        let t = self.saturation.observe(self.pool_saturation);
        let (v, th) = (
            fmt_ratio(self.pool_saturation.unwrap_or_default()),
            self.level(
                t,
                |c| fmt_ratio(c.pool_saturation.raise_at),
                |c| fmt_ratio(c.pool_saturation.clear_at),
            ),
        );
        emit(AlertKind::PoolSaturated, t, v, th);
        let t = self.failing.observe(Some(self.consecutive_failures));
        let (v, th) = (
            self.consecutive_failures.to_string(),
            self.level(
                t,
                |c| c.failed_checks.raise_at.to_string(),
                |c| c.failed_checks.clear_at.to_string(),
            ),
        );
        emit(AlertKind::ChecksFailing, t, v, th);

        step.recover = self.recovery_due(now, check, inputs);
        step
    }

    fn level(
        &self,
        transition: Option<Transition>,
        raise: impl Fn(&HealthConfig) -> String,
        clear: impl Fn(&HealthConfig) -> String,
    ) -> String {
        match transition {
            Some(Transition::Cleared) => clear(&self.config),
            _ => raise(&self.config),
        }
    }

    /// After N failed checks in a row during which the driver made no progress (not
    /// `Connected`, no successful checkout), and not within the minimum interval.
    fn recovery_due(&mut self, now: Instant, check: CheckResult, inputs: &Inputs) -> bool {
        let marker = inputs.pool.checkouts;
        let progressed = inputs.connection == ConnectionState::Connected
            || self.progress_marker.is_some_and(|m| m != marker);
        self.progress_marker = Some(marker);
        if check.is_ok() || progressed {
            self.no_progress = 0;
            return false;
        }
        self.no_progress = self.no_progress.saturating_add(1);
        let recovery = self.config.recovery;
        if !recovery.enabled || self.no_progress < recovery.after_failed_checks {
            return false;
        }
        if self
            .last_recovery
            .is_some_and(|last| now.saturating_duration_since(last) < recovery.min_interval)
        {
            return false;
        }
        self.last_recovery = Some(now);
        true
    }

    /// Counts a reset pool-core accepted.
    pub(crate) fn recovered(&mut self) {
        self.recoveries += 1;
    }

    /// The report for the current inputs.
    pub(crate) fn report(&self, inputs: &Inputs) -> HealthReport {
        let mut unhealthy = Vec::new();
        let mut degraded = Vec::new();
        if self.checks == 0 {
            degraded.push(Reason::NotStarted);
        }
        match inputs.connection {
            ConnectionState::Connected => {}
            // Only a closed client is unhealthy by its state alone. `Reconnecting` follows every
            // dropped connection for a moment (the driver marks the server unknown and checks it
            // again at once); failing requests fast or pulling the pod from the load balancer
            // for that would turn a blip into an outage. A lasting outage shows as failed checks
            // and an open breaker, both unhealthy.
            ConnectionState::Closed => unhealthy.push(Reason::Connection(ConnectionState::Closed)),
            state => degraded.push(Reason::Connection(state)),
        }
        match inputs.breaker {
            Some(state @ (BreakerState::Open | BreakerState::ForcedOpen)) => {
                unhealthy.push(Reason::Breaker(state));
            }
            Some(state @ BreakerState::HalfOpen) => degraded.push(Reason::Breaker(state)),
            _ => {}
        }
        if self.failing.is_active() {
            let reason = Reason::ChecksFailing {
                consecutive: self.consecutive_failures,
            };
            // Checks run on an interval, so the alert lags a recovery the driver has already
            // seen (a heartbeat answered: Connected). Gating requests until the next checks
            // pass would hold a returning database back by seconds; the alert itself stays
            // raised until the checks clear it.
            if inputs.connection == ConnectionState::Connected {
                degraded.push(reason);
            } else {
                unhealthy.push(reason);
            }
        } else if let Some(class) = self.last_check.and_then(|c| c.error) {
            degraded.push(Reason::CheckFailed(class));
        }
        if self.latency.is_active() {
            degraded.push(Reason::LatencyHigh {
                p99: self.latency_p99.unwrap_or_default(),
            });
        }
        if self.error_rate.is_active() {
            degraded.push(Reason::ErrorRateHigh {
                rate: self.rate.unwrap_or_default(),
            });
        }
        if self.saturation.is_active() {
            degraded.push(Reason::PoolSaturated {
                ratio: self.pool_saturation.unwrap_or_default(),
            });
        }
        degraded.extend(inputs.components.iter().filter_map(|c| {
            c.detail.as_ref().map(|detail| Reason::Component {
                name: c.name.clone(),
                detail: detail.clone(),
            })
        }));
        let status = if !unhealthy.is_empty() {
            HealthStatus::Unhealthy
        } else if !degraded.is_empty() {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        unhealthy.extend(degraded);
        HealthReport {
            status,
            reasons: unhealthy,
            connection: inputs.connection,
            breaker: inputs.breaker,
            last_check: self.last_check,
            latency_p99: self.latency_p99,
            error_rate: self.rate,
            pool_saturation: self.pool_saturation,
            pool: inputs.pool,
            consecutive_failures: self.consecutive_failures,
            checks: self.checks,
            recoveries: self.recoveries,
            started: self.started,
            components: inputs.components.clone(),
        }
    }
}
