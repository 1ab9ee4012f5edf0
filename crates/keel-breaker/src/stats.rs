//! [`BreakerStats`]: a breaker's call counts and state changes, readable in-process without a
//! metrics recorder.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::CallOutcome;

/// A breaker's counters at one moment, from [`Breaker::stats`](crate::Breaker::stats).
///
/// The same events are emitted as `metrics` series ([`CALLS_COUNTER`](crate::CALLS_COUNTER),
/// [`STATE_GAUGE`](crate::STATE_GAUGE)); these need no recorder, so a program reads them while
/// whatever recorder it installs (Prometheus, none) gets the metrics.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig};
/// let breaker = Breaker::new("db", BreakerConfig::default())?;
/// breaker.force_open();
/// assert!(breaker.try_acquire().is_err());
/// let stats = breaker.stats();
/// assert_eq!((stats.rejected, stats.state_changes), (1, 1));
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerStats {
    /// Calls let through that succeeded in time.
    pub successes: u64,
    /// Calls let through that failed (by the policy).
    pub failures: u64,
    /// Calls let through that succeeded, but slower than the slow-call threshold.
    pub slow: u64,
    /// Calls let through whose outcome the policy ignores.
    pub ignored: u64,
    /// Calls refused while the breaker was open (or its half-open probes were taken).
    pub rejected: u64,
    /// State changes (trips, half-open, close, operator commands).
    pub state_changes: u64,
}

impl BreakerStats {
    /// Calls the breaker let through, whatever their outcome.
    pub fn calls(&self) -> u64 {
        self.successes + self.failures + self.slow + self.ignored
    }
}

/// The live counters inside a breaker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    successes: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
    ignored: AtomicU64,
    rejected: AtomicU64,
    state_changes: AtomicU64,
}

impl Counters {
    pub(crate) fn call(&self, outcome: CallOutcome, slow: bool) {
        let counter = match outcome {
            CallOutcome::Success if slow => &self.slow,
            CallOutcome::Success => &self.successes,
            CallOutcome::Failure => &self.failures,
            CallOutcome::Ignored => &self.ignored,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn state_changed(&self) {
        self.state_changes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> BreakerStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        BreakerStats {
            successes: load(&self.successes),
            failures: load(&self.failures),
            slow: load(&self.slow),
            ignored: load(&self.ignored),
            rejected: load(&self.rejected),
            state_changes: load(&self.state_changes),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::{Breaker, BreakerConfig, BreakerState, CallOutcome};

    #[test]
    fn counts_outcomes_rejections_and_state_changes() {
        let breaker = Breaker::new("db", BreakerConfig::default()).unwrap();
        breaker.try_acquire().unwrap().record(CallOutcome::Success);
        breaker.try_acquire().unwrap().record(CallOutcome::Failure);
        breaker.try_acquire().unwrap().record(CallOutcome::Ignored);
        breaker.force_open();
        assert!(breaker.try_acquire().is_err());
        breaker.reset();
        assert_eq!(breaker.state(), BreakerState::Closed);

        let stats = breaker.stats();
        assert_eq!((stats.successes, stats.failures, stats.ignored), (1, 1, 1));
        assert_eq!(stats.calls(), 3);
        assert_eq!(stats.rejected, 1);
        assert_eq!(stats.state_changes, 2, "forced open, then reset");
    }
}
