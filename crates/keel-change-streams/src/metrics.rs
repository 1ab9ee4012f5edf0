//! The `keel_change_stream_*` metrics (labels: the consumer's name, and closed sets).

use metrics::{Counter, Gauge, counter, gauge};

/// Events handled.
pub const EVENTS_HANDLED: &str = "keel_change_stream_events_handled_total";
/// Failed handler attempts.
pub const HANDLER_ERRORS: &str = "keel_change_stream_handler_errors_total";
/// Resumes, by error class.
pub const RESUMES: &str = "keel_change_stream_resumes_total";
/// Events dead-lettered.
pub const DEAD_LETTERED: &str = "keel_change_stream_dead_lettered_total";
/// Seconds between now and the cluster time of the last handled event.
pub const LAG_SECONDS: &str = "keel_change_stream_lag_seconds";
/// Seconds since the last stored checkpoint.
pub const CHECKPOINT_AGE_SECONDS: &str = "keel_change_stream_checkpoint_age_seconds";
/// 1 while this instance may consume (holds its lease, or has none configured), else 0.
pub const LEASE_HELD: &str = "keel_change_stream_lease_held";
/// Gaps (history lost, restarted from now).
pub const GAPS: &str = "keel_change_stream_gaps_total";

pub(crate) fn handler_error(consumer: &str) {
    counter!(HANDLER_ERRORS, "consumer" => consumer.to_owned()).increment(1);
}
pub(crate) fn resumed(consumer: &str, class: &'static str) {
    counter!(RESUMES, "consumer" => consumer.to_owned(), "class" => class).increment(1);
}
pub(crate) fn dead_lettered(consumer: &str) {
    counter!(DEAD_LETTERED, "consumer" => consumer.to_owned()).increment(1);
}
pub(crate) fn gap(consumer: &str) {
    counter!(GAPS, "consumer" => consumer.to_owned()).increment(1);
}
pub(crate) fn lease_held(consumer: &str, held: bool) {
    gauge!(LEASE_HELD, "consumer" => consumer.to_owned()).set(if held { 1.0 } else { 0.0 });
}

/// The metrics written per event, registered once per consumer: `counter!` with a `consumer`
/// label allocates the label and looks the metric up in the recorder on every call.
pub(crate) struct Meters {
    pub(crate) handled: Counter,
    pub(crate) lag: Gauge,
    pub(crate) checkpoint_age: Gauge,
}

impl Meters {
    pub(crate) fn new(consumer: &str) -> Self {
        Self {
            handled: counter!(EVENTS_HANDLED, "consumer" => consumer.to_owned()),
            lag: gauge!(LAG_SECONDS, "consumer" => consumer.to_owned()),
            checkpoint_age: gauge!(CHECKPOINT_AGE_SECONDS, "consumer" => consumer.to_owned()),
        }
    }
}
