//! The events and metrics the retry layer emits, in one place so their names stay stable.

use std::time::Duration;

use crate::{RetryStats, StopReason};

/// Counter: retries started, labelled `op` (operation name) and `class` (the error class that
/// caused the retry).
///
/// ```
/// assert_eq!(keel_retry::ATTEMPTS_TOTAL, "keel_retry_attempts_total");
/// assert_eq!(keel_retry::GIVE_UPS_TOTAL, "keel_retry_give_ups_total");
/// ```
pub const ATTEMPTS_TOTAL: &str = "keel_retry_attempts_total";
/// Counter: errors handed back to callers, labelled `op` and `reason`
/// ([`StopReason::label`]).
pub const GIVE_UPS_TOTAL: &str = "keel_retry_give_ups_total";

/// A retry is about to be scheduled.
pub(crate) fn retrying(
    stats: &RetryStats,
    op: &str,
    class: &'static str,
    failed_attempt: u32,
    delay: Duration,
) {
    stats.retry_scheduled();
    tracing::debug!(
        target: "keel_retry",
        op,
        class,
        failed_attempt,
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "retrying after a failed attempt"
    );
    metrics::counter!(ATTEMPTS_TOTAL, "op" => op.to_owned(), "class" => class).increment(1);
}

/// The layer is handing an error back to its caller.
pub(crate) fn gave_up(
    stats: &RetryStats,
    op: &str,
    class: &'static str,
    attempts: u32,
    reason: StopReason,
) {
    stats.gave_up(reason);
    match reason {
        // An error the policy does not retry is the caller's business, not the layer's trouble.
        StopReason::NotRetryable => tracing::debug!(
            target: "keel_retry", op, class, attempts, reason = reason.as_str(), "not retrying"
        ),
        _ => tracing::warn!(
            target: "keel_retry", op, class, attempts, reason = reason.as_str(), "giving up"
        ),
    }
    metrics::counter!(GIVE_UPS_TOTAL, "op" => op.to_owned(), "reason" => reason.label())
        .increment(1);
}
