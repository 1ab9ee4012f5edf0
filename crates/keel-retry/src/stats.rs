//! [`RetryStats`]: the retry layer's counters, readable in-process without a metrics recorder.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use crate::StopReason;

/// Counters shared by every service built from one [`RetryLayer`](crate::RetryLayer): attempts
/// started, retries scheduled and why the layer gave up. Cheap to clone (clones share the
/// counters).
///
/// The same events are emitted as `metrics` counters ([`ATTEMPTS_TOTAL`](crate::ATTEMPTS_TOTAL),
/// [`GIVE_UPS_TOTAL`](crate::GIVE_UPS_TOTAL)); these stats need no recorder, so a program can
/// read them while whatever recorder it installs (Prometheus, none) gets the metrics.
///
/// ```
/// use keel_retry::{RetryConfig, RetryIf, RetryLayer};
/// let layer = RetryLayer::new(RetryIf::new(|_: &std::io::Error| true), RetryConfig::default())?;
/// let stats = layer.stats().snapshot();
/// assert_eq!((stats.attempts, stats.retries, stats.budget_exhausted), (0, 0, 0));
/// # Ok::<(), keel_retry::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct RetryStats {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    attempts: AtomicU64,
    retries: AtomicU64,
    gave_up: [AtomicU64; StopReason::ALL.len()],
}

/// The values of [`RetryStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrySnapshot {
    /// Attempts started, first attempts included.
    pub attempts: u64,
    /// Retries scheduled after a failed attempt (what `keel_retry_attempts_total` counts).
    pub retries: u64,
    /// Errors handed back because the policy does not retry them.
    pub not_retryable: u64,
    /// Errors handed back after `max_attempts` attempts.
    pub max_attempts: u64,
    /// Errors handed back because the retry budget had no token left.
    pub budget_exhausted: u64,
    /// Errors handed back because the deadline left no room for another attempt.
    pub deadline_exceeded: u64,
}

impl RetrySnapshot {
    /// Errors handed back to callers, for every reason.
    pub fn gave_up(&self) -> u64 {
        self.not_retryable + self.max_attempts + self.budget_exhausted + self.deadline_exceeded
    }
}

impl RetryStats {
    /// New counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters now. Each is read on its own (relaxed), so a snapshot taken while calls
    /// run may be a few events apart between counters.
    pub fn snapshot(&self) -> RetrySnapshot {
        let c = &self.counters;
        let gave_up = |reason: StopReason| c.gave_up[index(reason)].load(Ordering::Relaxed);
        RetrySnapshot {
            attempts: c.attempts.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            not_retryable: gave_up(StopReason::NotRetryable),
            max_attempts: gave_up(StopReason::MaxAttempts),
            budget_exhausted: gave_up(StopReason::BudgetExhausted),
            deadline_exceeded: gave_up(StopReason::DeadlineExceeded),
        }
    }

    pub(crate) fn attempt_started(&self) {
        self.counters.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retry_scheduled(&self) {
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn gave_up(&self, reason: StopReason) {
        self.counters.gave_up[index(reason)].fetch_add(1, Ordering::Relaxed);
    }
}

fn index(reason: StopReason) -> usize {
    match reason {
        StopReason::NotRetryable => 0,
        StopReason::MaxAttempts => 1,
        StopReason::BudgetExhausted => 2,
        StopReason::DeadlineExceeded => 3,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::{
        sync::atomic::{AtomicU32, Ordering},
        time::Duration,
    };

    use tower::{ServiceExt, service_fn};
    use tower_layer::Layer;

    use super::*;
    use crate::{BackoffConfig, BudgetConfig, Jitter, RetryConfig, RetryIf, RetryLayer};

    fn config(budget: Option<BudgetConfig>) -> RetryConfig {
        RetryConfig {
            max_attempts: 3,
            backoff: BackoffConfig {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(10),
                multiplier: 2.0,
                jitter: Jitter::None,
            },
            budget,
            total_timeout: None,
            attempt_timeout: None,
        }
    }

    fn always_retry() -> RetryIf<fn(&std::io::Error) -> bool> {
        RetryIf::new(|_| true)
    }

    #[tokio::test(start_paused = true)]
    async fn counts_attempts_retries_and_the_reason_for_giving_up() {
        let layer = RetryLayer::new(always_retry(), config(None)).unwrap();
        let calls = std::sync::Arc::new(AtomicU32::new(0));
        let counter = std::sync::Arc::clone(&calls);
        // Fails twice, then answers; the next request fails every attempt.
        let service = layer.layer(service_fn(move |fail_always: bool| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if fail_always || n < 2 {
                    Err(std::io::Error::other("flaky"))
                } else {
                    Ok(n)
                }
            }
        }));
        assert_eq!(service.clone().oneshot(false).await.unwrap(), 2);
        assert!(service.oneshot(true).await.is_err());

        let stats = layer.stats().snapshot();
        assert_eq!(stats.attempts, 6, "3 for each request");
        assert_eq!(stats.retries, 4, "2 for each request");
        assert_eq!(stats.max_attempts, 1);
        assert_eq!(stats.gave_up(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn counts_retries_refused_by_the_budget() {
        let budget = BudgetConfig {
            ratio: 0.0,
            min_per_sec: 0,
            ..BudgetConfig::default()
        };
        let layer = RetryLayer::new(always_retry(), config(Some(budget))).unwrap();
        let failing = layer.layer(service_fn(|_: ()| async {
            Err::<(), _>(std::io::Error::other("down"))
        }));
        assert!(failing.oneshot(()).await.is_err());
        let stats = layer.stats().snapshot();
        assert_eq!(stats.budget_exhausted, 1);
        assert_eq!((stats.attempts, stats.retries), (1, 0));
    }

    #[test]
    fn clones_share_the_counters_and_every_reason_has_its_own() {
        let stats = RetryStats::new();
        let clone = stats.clone();
        for reason in StopReason::ALL {
            clone.gave_up(reason);
        }
        let snapshot = stats.snapshot();
        assert_eq!(
            [
                snapshot.not_retryable,
                snapshot.max_attempts,
                snapshot.budget_exhausted,
                snapshot.deadline_exceeded
            ],
            [1; 4]
        );
    }
}
