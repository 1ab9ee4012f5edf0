//! The alert vocabulary: which alert, raised or cleared, and the event sinks receive.

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

/// The alerts the monitor raises: a closed set, so it is safe as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// p99 check latency over the window is at or above its threshold.
    LatencyHigh,
    /// The share of failed checks and operations in the window is at or above its threshold.
    ErrorRateHigh,
    /// The pool's connections in use over its maximum size is at or above its threshold.
    PoolSaturated,
    /// Checks failed several times in a row.
    ChecksFailing,
    /// A registered [component](crate::ComponentReporter) reports a problem
    /// ([`AlertEvent::component`] names it).
    ComponentDegraded,
}

impl AlertKind {
    /// Every alert, for tables and gauges.
    pub const ALL: [AlertKind; 5] = [
        AlertKind::LatencyHigh,
        AlertKind::ErrorRateHigh,
        AlertKind::PoolSaturated,
        AlertKind::ChecksFailing,
        AlertKind::ComponentDegraded,
    ];

    /// A short stable name, for labels, logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LatencyHigh => "latency_high",
            AlertKind::ErrorRateHigh => "error_rate_high",
            AlertKind::PoolSaturated => "pool_saturated",
            AlertKind::ChecksFailing => "checks_failing",
            AlertKind::ComponentDegraded => "component_degraded",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an alert started or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The value stayed past the raise level long enough.
    Raised,
    /// The value stayed at or below the clear level long enough.
    Cleared,
}

impl Transition {
    /// `"raised"` or `"cleared"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Raised => "raised",
            Transition::Cleared => "cleared",
        }
    }
}

/// One alert transition, as delivered to every sink.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    /// Which alert.
    pub kind: AlertKind,
    /// Raised or cleared.
    pub transition: Transition,
    /// The value that caused the transition, formatted (`"812ms"`, `"31.0%"`, `"4"`); for a
    /// component, its sentence when raised and `"healthy"` when cleared.
    pub value: String,
    /// The level it crossed, formatted the same way (empty for a component).
    pub threshold: String,
    /// The component's name, for [`AlertKind::ComponentDegraded`]; `None` for the monitor's own
    /// alerts.
    pub component: Option<String>,
    /// Wall-clock time of the transition.
    pub at: SystemTime,
}

impl AlertEvent {
    /// A one-line human summary (`"latency_high raised: 812ms (threshold 500ms)"`).
    pub fn summary(&self) -> String {
        if let Some(component) = &self.component {
            return format!(
                "{} {}: {component}: {}",
                self.kind,
                self.transition.as_str(),
                self.value
            );
        }
        format!(
            "{} {}: {} (threshold {})",
            self.kind,
            self.transition.as_str(),
            self.value,
            self.threshold
        )
    }

    /// Milliseconds since the Unix epoch (0 for a clock before 1970).
    pub fn unix_millis(&self) -> u64 {
        let since = self.at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    /// The event as JSON (what the webhook sink posts).
    pub fn to_json(&self) -> Value {
        json!({
            "alert": self.kind.as_str(),
            "transition": self.transition.as_str(),
            "value": self.value,
            "threshold": self.threshold,
            "component": self.component,
            "at_unix_ms": self.unix_millis(),
            "summary": self.summary(),
        })
    }
}
