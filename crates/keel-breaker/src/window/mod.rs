//! Sliding windows of recent call outcomes, updated with atomics only (no lock per call).

mod count;
mod time;

use tokio::time::Instant;

use crate::SlidingWindow;

pub(crate) use count::CountWindow;
pub(crate) use time::TimeWindow;

/// The calls a sliding window currently holds.
///
/// Under concurrent recording the three numbers are read one after the other, so they may be
/// off by the few calls in flight; the rates are meant for decisions, not for accounting.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, CallOutcome};
///
/// let breaker = Breaker::new("t", BreakerConfig::default())?;
/// breaker.try_acquire().expect("closed").record(CallOutcome::Success);
/// breaker.try_acquire().expect("closed").record(CallOutcome::Failure);
/// let window = breaker.window();
/// assert_eq!((window.calls, window.failures), (2, 1));
/// assert_eq!(window.failure_rate_percent(), 50.0);
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowSnapshot {
    /// Calls counted (failures and successes; ignored outcomes are not counted).
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls slower than the slow-call threshold (failed or not).
    pub slow: u64,
}

impl WindowSnapshot {
    /// Failures as a percentage of calls (0 for an empty window).
    pub fn failure_rate_percent(&self) -> f64 {
        percent(self.failures, self.calls)
    }

    /// Slow calls as a percentage of calls (0 for an empty window).
    pub fn slow_rate_percent(&self) -> f64 {
        percent(self.slow, self.calls)
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Precision loss only beyond 2^53 calls, far beyond any window.
        #[allow(clippy::cast_precision_loss)]
        let rate = part as f64 * 100.0 / whole as f64;
        rate
    }
}

/// One of the two window kinds; an enum rather than a trait object to keep the hot path inlined.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(config: SlidingWindow, origin: Instant) -> Self {
        match config {
            SlidingWindow::Count { calls } => Window::Count(CountWindow::new(calls)),
            SlidingWindow::Time { length, buckets } => {
                Window::Time(TimeWindow::new(length, buckets, origin))
            }
        }
    }

    /// Whether recording needs the current time.
    pub(crate) fn needs_clock(&self) -> bool {
        matches!(self, Window::Time(_))
    }

    pub(crate) fn record(&self, now: Option<Instant>, failure: bool, slow: bool) {
        match self {
            Window::Count(w) => w.record(failure, slow),
            Window::Time(w) => {
                if let Some(now) = now {
                    w.record(now, failure, slow);
                }
            }
        }
    }

    pub(crate) fn snapshot(&self, now: Option<Instant>) -> WindowSnapshot {
        match self {
            Window::Count(w) => w.snapshot(),
            Window::Time(w) => w.snapshot(now.unwrap_or_else(Instant::now)),
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            Window::Count(w) => w.reset(),
            Window::Time(w) => w.reset(),
        }
    }
}
