//! What the monitor concludes: `Healthy / Degraded / Unhealthy`, the reasons, and the report.

use std::{fmt, time::Duration};

use keel_breaker::BreakerState;
use keel_core::ErrorClass;
use keel_pool_core::{ConnectionState, PoolStats};
use serde_json::{Value, json};

use crate::ComponentHealth;

/// The overall health of the database connection, ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthStatus {
    /// Checks pass, no alert is active, the connection and the breaker are fine.
    Healthy,
    /// Serving, but impaired: an alert is active, a check failed, the breaker is probing or the
    /// driver reports a degraded topology.
    Degraded,
    /// Not serving: checks keep failing, the driver is reconnecting or closed, or the breaker is
    /// open. The health gate fails requests fast in this state.
    Unhealthy,
}

impl HealthStatus {
    /// A short stable name, for logs, JSON and metric values.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// The value of the `keel_health_status` gauge: 0 healthy, 1 degraded, 2 unhealthy.
    pub fn gauge_value(self) -> f64 {
        match self {
            HealthStatus::Healthy => 0.0,
            HealthStatus::Degraded => 1.0,
            HealthStatus::Unhealthy => 2.0,
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the status is not `Healthy`. Every variant carries only values from closed sets or
/// numbers, never server messages, so a reason is safe to show and log.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// No check has completed yet.
    NotStarted,
    /// The driver's connection state (pool-core) is not `Connected`.
    Connection(ConnectionState),
    /// The circuit breaker is not closed.
    Breaker(BreakerState),
    /// The last check failed, with this error class.
    CheckFailed(ErrorClass),
    /// Several checks in a row failed (the `checks_failing` alert is active).
    ChecksFailing {
        /// Failed checks in a row.
        consecutive: u32,
    },
    /// The `latency_high` alert is active.
    LatencyHigh {
        /// p99 check latency over the window.
        p99: Duration,
    },
    /// The `error_rate_high` alert is active.
    ErrorRateHigh {
        /// Failed checks and operations over all, in the window (0–1).
        rate: f64,
    },
    /// The `pool_saturated` alert is active.
    PoolSaturated {
        /// Connections in use over the pool's maximum size (0–1).
        ratio: f64,
    },
    /// A registered [component](crate::ComponentReporter) reports a problem.
    Component {
        /// The component's name.
        name: String,
        /// The component's own sentence (it promises no secret in it).
        detail: String,
    },
}

impl Reason {
    /// A short stable code, for JSON and the dashboard.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotStarted => "not_started",
            Reason::Connection(_) => "connection",
            Reason::Breaker(_) => "breaker",
            Reason::CheckFailed(_) => "check_failed",
            Reason::ChecksFailing { .. } => "checks_failing",
            Reason::LatencyHigh { .. } => "latency_high",
            Reason::ErrorRateHigh { .. } => "error_rate_high",
            Reason::PoolSaturated { .. } => "pool_saturated",
            Reason::Component { .. } => "component",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotStarted => f.write_str("no health check has completed yet"),
            Reason::Connection(state) => write!(f, "connection state is {state}"),
            Reason::Breaker(state) => write!(f, "circuit breaker is {state}"),
            Reason::CheckFailed(class) => write!(f, "the last check failed ({class})"),
            Reason::ChecksFailing { consecutive } => {
                write!(f, "{consecutive} checks in a row failed")
            }
            Reason::LatencyHigh { p99 } => {
                write!(f, "p99 check latency is {:.1}ms", millis(*p99))
            }
            Reason::ErrorRateHigh { rate } => write!(f, "error rate is {:.1}%", rate * 100.0),
            Reason::PoolSaturated { ratio } => {
                write!(f, "pool is {:.0}% in use", ratio * 100.0)
            }
            Reason::Component { name, detail } => write!(f, "{name}: {detail}"),
        }
    }
}

/// The outcome of one health check (a `ping`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckResult {
    /// How long the check took (up to the check timeout).
    pub latency: Duration,
    /// `None` when the ping succeeded, else the class of its error.
    pub error: Option<ErrorClass>,
}

impl CheckResult {
    /// Whether the check succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Everything the monitor knows, published on a `watch` after every check and every change of
/// the connection or breaker state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HealthReport {
    /// The overall status.
    pub status: HealthStatus,
    /// Why the status is not `Healthy` (empty when it is).
    pub reasons: Vec<Reason>,
    /// The driver's connection state, from pool-core.
    pub connection: ConnectionState,
    /// The circuit breaker's state, when the monitor watches one.
    pub breaker: Option<BreakerState>,
    /// The last check, if any has completed.
    pub last_check: Option<CheckResult>,
    /// p99 latency of the successful checks in the window (`None` below the minimum number of
    /// samples).
    pub latency_p99: Option<Duration>,
    /// Failed checks and operations over all, in the window (`None` below the minimum samples).
    pub error_rate: Option<f64>,
    /// Pool connections in use over the pool's maximum size.
    pub pool_saturation: Option<f64>,
    /// Pool numbers at the last evaluation.
    pub pool: PoolStats,
    /// Failed checks in a row.
    pub consecutive_failures: u32,
    /// Checks run since start.
    pub checks: u64,
    /// Recoveries (`reset()` calls) pool-core accepted since start.
    pub recoveries: u64,
    /// Whether at least one check has succeeded (the startup probe's condition).
    pub started: bool,
    /// Registered [components](crate::ComponentReporter) and their state.
    pub components: Vec<ComponentHealth>,
}

impl HealthReport {
    /// The report before any check: `Degraded` because nothing is known yet (`NotStarted`).
    ///
    /// ```
    /// use keel_health::{HealthReport, HealthStatus};
    /// use keel_pool_core::ConnectionState;
    /// let report = HealthReport::starting(ConnectionState::Connected, None);
    /// assert_eq!(report.status, HealthStatus::Degraded);
    /// assert!(!report.started);
    /// ```
    pub fn starting(connection: ConnectionState, breaker: Option<BreakerState>) -> Self {
        Self {
            status: HealthStatus::Degraded,
            reasons: vec![Reason::NotStarted],
            connection,
            breaker,
            last_check: None,
            latency_p99: None,
            error_rate: None,
            pool_saturation: None,
            pool: PoolStats::default(),
            consecutive_failures: 0,
            checks: 0,
            recoveries: 0,
            started: false,
            components: Vec::new(),
        }
    }

    /// The report as JSON, for probes and the dashboard. Holds no server message or URI.
    ///
    /// ```
    /// # use keel_health::{HealthReport, HealthStatus};
    /// # fn show(report: &HealthReport) {
    /// let json = report.to_json();
    /// assert!(json["status"].is_string());
    /// # }
    /// ```
    pub fn to_json(&self) -> Value {
        json!({
            "status": self.status.as_str(),
            "reasons": self.reasons.iter().map(|r| json!({
                "code": r.code(),
                "message": r.to_string(),
            })).collect::<Vec<_>>(),
            "connection": self.connection.as_str(),
            "breaker": self.breaker.map(BreakerState::as_str),
            "last_check": self.last_check.map(|c| json!({
                "ok": c.is_ok(),
                "latency_ms": millis(c.latency),
                "error_class": c.error.map(ErrorClass::as_str),
            })),
            "latency_p99_ms": self.latency_p99.map(millis),
            "error_rate": self.error_rate,
            "pool_saturation": self.pool_saturation,
            "pool": {
                "open": self.pool.open,
                "in_use": self.pool.in_use,
                "idle": self.pool.idle,
            },
            "consecutive_failures": self.consecutive_failures,
            "checks": self.checks,
            "recoveries": self.recoveries,
            "started": self.started,
            "components": self.components.iter().map(|c| json!({
                "name": c.name,
                "status": if c.is_degraded() { "degraded" } else { "healthy" },
                "detail": c.detail,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Milliseconds with microsecond precision, for JSON.
pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
