//! The names of the metrics this crate emits, in one place so they stay stable.

/// Gauge: overall health, 0 healthy, 1 degraded, 2 unhealthy.
pub const STATUS: &str = "keel_health_status";
/// Counter `{outcome}`: health checks (`ok`, `failed`).
pub const CHECKS: &str = "keel_health_checks_total";
/// Histogram (seconds): health check (ping) latency.
pub const CHECK_DURATION: &str = "keel_health_check_duration_seconds";
/// Gauge `{alert}`: 1 while the alert is raised, else 0.
pub const ALERT_ACTIVE: &str = "keel_health_alert_active";
/// Gauge per registered component: 1 while it reports a problem, 0 otherwise.
pub const COMPONENT_DEGRADED: &str = "keel_health_component_degraded";
/// Counter `{alert, transition}`: alert transitions (`raised`, `cleared`).
pub const ALERT_TRANSITIONS: &str = "keel_health_alert_transitions_total";
/// Counter `{sink, outcome}`: alert deliveries (`delivered`, `failed`, `dropped`).
pub const ALERT_DELIVERIES: &str = "keel_health_alert_deliveries_total";
/// Counter `{outcome}`: recovery attempts (`reset`, `refused`).
pub const RECOVERIES: &str = "keel_health_recoveries_total";
/// Counter `{reason}`: requests the health gate refused (`unhealthy`, `queue_full`,
/// `hold_timeout`).
pub const GATE_REJECTIONS: &str = "keel_health_gate_rejections_total";
/// Counter `{op, outcome}`: operations finished (`success`, `error`).
pub const OPERATIONS: &str = "keel_operations_total";
/// Counter `{op, class}`: failed operations by error class.
pub const OPERATION_ERRORS: &str = "keel_operation_errors_total";
/// Histogram (seconds) `{op}`: operation latency, all attempts included.
pub const OPERATION_DURATION: &str = "keel_operation_duration_seconds";
