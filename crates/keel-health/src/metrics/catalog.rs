//! The catalog of every Keel metric, across crates: one table for operators (the README prints
//! it, a test keeps the two equal) and the descriptions the Prometheus endpoint shows.

use keel_pool_core::metric_names as pool;

use super::names;

/// What kind of metric a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution (Prometheus histogram, seconds).
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric: name, kind, labels (each from a closed set) and meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDoc {
    /// The metric name.
    pub name: &'static str,
    /// Its kind.
    pub kind: MetricKind,
    /// Its labels and their values.
    pub labels: &'static str,
    /// The crate that emits it.
    pub source: &'static str,
    /// What it means.
    pub help: &'static str,
}

const fn doc(
    name: &'static str,
    kind: MetricKind,
    labels: &'static str,
    source: &'static str,
    help: &'static str,
) -> MetricDoc {
    MetricDoc {
        name,
        kind,
        labels,
        source,
        help,
    }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric Keel emits. Labels hold closed sets only: operation names (fixed in code),
/// error classes, outcomes, states — never a filter, an id or a host.
pub const CATALOG: &[MetricDoc] = &[
    doc(
        names::OPERATIONS,
        Counter,
        "`op`, `outcome` = success, error",
        "keel-health",
        "operations finished (OperationMetricsLayer)",
    ),
    doc(
        names::OPERATION_ERRORS,
        Counter,
        "`op`, `class` (ErrorClass)",
        "keel-health",
        "failed operations by error class",
    ),
    doc(
        names::OPERATION_DURATION,
        Histogram,
        "`op`",
        "keel-health",
        "operation latency in seconds, all attempts included",
    ),
    doc(
        names::STATUS,
        Gauge,
        "—",
        "keel-health",
        "0 healthy, 1 degraded, 2 unhealthy",
    ),
    doc(
        names::CHECKS,
        Counter,
        "`outcome` = ok, failed",
        "keel-health",
        "health checks (pings)",
    ),
    doc(
        names::CHECK_DURATION,
        Histogram,
        "—",
        "keel-health",
        "health check latency in seconds",
    ),
    doc(
        names::ALERT_ACTIVE,
        Gauge,
        "`alert` = latency_high, error_rate_high, pool_saturated, checks_failing, component_degraded",
        "keel-health",
        "1 while the alert is raised (component_degraded: while any component is degraded)",
    ),
    doc(
        names::COMPONENT_DEGRADED,
        Gauge,
        "`component` = the name a registered component was given",
        "keel-health",
        "1 while the component reports a problem",
    ),
    doc(
        names::ALERT_TRANSITIONS,
        Counter,
        "`alert`, `transition` = raised, cleared",
        "keel-health",
        "alert transitions",
    ),
    doc(
        names::ALERT_DELIVERIES,
        Counter,
        "`sink` = log, channel, webhook (or a custom sink's name), `outcome` = delivered, failed, dropped",
        "keel-health",
        "alert deliveries",
    ),
    doc(
        names::RECOVERIES,
        Counter,
        "`outcome` = reset, refused",
        "keel-health",
        "automatic recovery attempts",
    ),
    doc(
        names::GATE_REJECTIONS,
        Counter,
        "`reason` = unhealthy, queue_full, hold_timeout",
        "keel-health",
        "requests refused by HealthGateLayer",
    ),
    doc(
        "keel_connection_state",
        Gauge,
        "—",
        "keel-pool-core",
        "0 connecting, 1 connected, 2 degraded, 3 reconnecting, 4 closed",
    ),
    doc(
        "keel_connection_state_transitions_total",
        Counter,
        "`from`, `to` (connection states)",
        "keel-pool-core",
        "connection state changes",
    ),
    doc(
        pool::OPEN,
        Gauge,
        "—",
        "keel-pool-core",
        "connections open, all servers",
    ),
    doc(
        pool::IN_USE,
        Gauge,
        "—",
        "keel-pool-core",
        "connections checked out",
    ),
    doc(
        pool::IDLE,
        Gauge,
        "—",
        "keel-pool-core",
        "connections open and idle",
    ),
    doc(
        pool::CHECKOUT_WAIT,
        Histogram,
        "—",
        "keel-pool-core",
        "driver checkout time in seconds",
    ),
    doc(
        pool::CHECKOUTS_FAILED,
        Counter,
        "`reason` = timeout, connection_error",
        "keel-pool-core",
        "failed driver checkouts",
    ),
    doc(
        pool::CLEARED,
        Counter,
        "—",
        "keel-pool-core",
        "pools cleared by the driver",
    ),
    doc(
        pool::LIFETIME,
        Histogram,
        "—",
        "keel-pool-core",
        "connection age at close in seconds",
    ),
    doc(
        pool::CLOSED,
        Counter,
        "`reason` = stale, idle, error, dropped, pool_closed, other",
        "keel-pool-core",
        "closed connections",
    ),
    doc(
        "keel_pool_checkout_limit_rejections_total",
        Counter,
        "`reason` = queue_full, wait_exceeded",
        "keel-pool-core",
        "requests shed by CheckoutLimitLayer",
    ),
    doc(
        "keel_pool_resets_total",
        Counter,
        "—",
        "keel-pool-core",
        "reset() calls that replaced the client",
    ),
    doc(
        keel_retry::ATTEMPTS_TOTAL,
        Counter,
        "`op`, `class`",
        "keel-retry",
        "retries started",
    ),
    doc(
        keel_retry::GIVE_UPS_TOTAL,
        Counter,
        "`op`, `reason` = not_retryable, max_attempts, budget_exhausted, deadline_exceeded",
        "keel-retry",
        "errors returned by the retry layer",
    ),
    doc(
        keel_breaker::STATE_GAUGE,
        Gauge,
        "`name` (breaker name, set in code)",
        "keel-breaker",
        "0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled",
    ),
    doc(
        keel_breaker::CALLS_COUNTER,
        Counter,
        "`name`, `outcome` = success, failure, rejected, slow, ignored",
        "keel-breaker",
        "calls through the breaker",
    ),
];

/// The catalog as a Markdown table (the README's metric table).
pub fn catalog_markdown() -> String {
    let mut out =
        String::from("| name | kind | labels | from | meaning |\n|---|---|---|---|---|\n");
    for m in CATALOG {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            m.name,
            m.kind.as_str(),
            m.labels,
            m.source,
            m.help
        ));
    }
    out
}

/// Registers every metric's description (and unit) with the installed recorder, so the
/// Prometheus output carries `# HELP` lines.
pub fn describe_all() {
    for m in CATALOG {
        match m.kind {
            MetricKind::Counter => metrics::describe_counter!(m.name, m.help),
            MetricKind::Gauge => metrics::describe_gauge!(m.name, m.help),
            MetricKind::Histogram => {
                metrics::describe_histogram!(m.name, metrics::Unit::Seconds, m.help);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for m in CATALOG {
            assert!(m.name.starts_with("keel_"), "{}", m.name);
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            if m.kind == MetricKind::Histogram {
                assert!(m.name.ends_with("_seconds"), "{}", m.name);
            }
            if m.kind == MetricKind::Counter {
                assert!(m.name.ends_with("_total"), "{}", m.name);
            }
        }
    }

    #[test]
    fn the_readme_table_is_the_catalog() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&catalog_markdown()),
            "README metric table differs from the catalog; paste:\n{}",
            catalog_markdown()
        );
    }
}
