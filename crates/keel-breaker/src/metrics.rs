//! Metric handles registered once per breaker, so the hot path never looks a metric up by name.

use metrics::{Counter, Gauge};

use crate::BreakerState;

/// Gauge: the breaker's state, see [`BreakerState::gauge_value`]. Label: `name`.
///
/// ```
/// assert_eq!(keel_breaker::STATE_GAUGE, "keel_breaker_state");
/// assert_eq!(keel_breaker::CALLS_COUNTER, "keel_breaker_calls_total");
/// ```
pub const STATE_GAUGE: &str = "keel_breaker_state";
/// Counter: calls seen by the breaker. Labels: `name`, `outcome` (`success`, `failure`,
/// `rejected`, `slow`, `ignored`).
pub const CALLS_COUNTER: &str = "keel_breaker_calls_total";

#[derive(Debug)]
pub(crate) struct Metrics {
    state: Gauge,
    pub(crate) success: Counter,
    pub(crate) failure: Counter,
    pub(crate) rejected: Counter,
    pub(crate) slow: Counter,
    pub(crate) ignored: Counter,
}

impl Metrics {
    /// Registers the breaker's series with the recorder installed now (global or local).
    pub(crate) fn register(name: &str) -> Self {
        let calls = |outcome: &'static str| metrics::counter!(CALLS_COUNTER, "name" => name.to_owned(), "outcome" => outcome);
        Self {
            state: metrics::gauge!(STATE_GAUGE, "name" => name.to_owned()),
            success: calls("success"),
            failure: calls("failure"),
            rejected: calls("rejected"),
            slow: calls("slow"),
            ignored: calls("ignored"),
        }
    }

    pub(crate) fn set_state(&self, state: BreakerState) {
        self.state.set(state.gauge_value());
    }
}
