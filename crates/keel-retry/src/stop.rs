//! Why the retry layer stopped trying and handed an error back to the caller.

use std::fmt;

/// Why the retry layer returned an error instead of trying again.
///
/// [`as_str`](StopReason::as_str) gives the fixed phrase used in error messages (and in
/// `keel_core::Error::with_attempts`), [`label`](StopReason::label) the metric label.
///
/// ```
/// use keel_retry::StopReason;
/// assert_eq!(StopReason::BudgetExhausted.as_str(), "retry budget exhausted");
/// assert_eq!(StopReason::DeadlineExceeded.label(), "deadline_exceeded");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The policy said this error must not be retried (or cannot be helped by a retry).
    NotRetryable,
    /// The configured number of attempts was used up.
    MaxAttempts,
    /// The retry budget had no token left: retries are already a large share of traffic.
    BudgetExhausted,
    /// The next attempt could not start (or finish) before the deadline.
    DeadlineExceeded,
}

impl StopReason {
    /// Every reason, for tables and exhaustive tests.
    pub const ALL: [StopReason; 4] = [
        StopReason::NotRetryable,
        StopReason::MaxAttempts,
        StopReason::BudgetExhausted,
        StopReason::DeadlineExceeded,
    ];

    /// The fixed human phrase: `"not retryable"`, `"max attempts reached"`,
    /// `"retry budget exhausted"` or `"deadline exceeded"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::NotRetryable => "not retryable",
            StopReason::MaxAttempts => "max attempts reached",
            StopReason::BudgetExhausted => "retry budget exhausted",
            StopReason::DeadlineExceeded => "deadline exceeded",
        }
    }

    /// A short stable name for the `reason` metric label.
    pub fn label(self) -> &'static str {
        match self {
            StopReason::NotRetryable => "not_retryable",
            StopReason::MaxAttempts => "max_attempts",
            StopReason::BudgetExhausted => "budget_exhausted",
            StopReason::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_the_documented_ones() {
        let phrases = StopReason::ALL.map(StopReason::as_str);
        assert_eq!(
            phrases,
            [
                "not retryable",
                "max attempts reached",
                "retry budget exhausted",
                "deadline exceeded"
            ]
        );
        assert_eq!(
            StopReason::BudgetExhausted.to_string(),
            "retry budget exhausted"
        );
    }

    #[test]
    fn labels_are_distinct_snake_case() {
        let labels = StopReason::ALL.map(StopReason::label);
        let unique: std::collections::HashSet<_> = labels.iter().collect();
        assert_eq!(unique.len(), labels.len());
        assert!(
            labels
                .iter()
                .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}
