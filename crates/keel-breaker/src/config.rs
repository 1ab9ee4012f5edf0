//! Breaker configuration: trip rules, sliding window, open wait and probes, with validated defaults.

use std::time::Duration;

use crate::ConfigError;

mod settings;

pub use settings::{BreakerSettings, SettingError};

/// The largest count-based window: counters are exact up to this size.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, MAX_WINDOW_CALLS, SlidingWindow};
///
/// let too_big = BreakerConfig {
///     window: SlidingWindow::count(MAX_WINDOW_CALLS + 1),
///     ..BreakerConfig::default()
/// };
/// assert!(Breaker::new("t", too_big).is_err());
/// ```
pub const MAX_WINDOW_CALLS: u32 = 1_000_000;
/// The most buckets a time-based window may have; every evaluation sums them all.
pub const MAX_WINDOW_BUCKETS: u32 = 1_000;

/// Which recent calls the failure and slow-call rates are computed over.
///
/// ```
/// use keel_breaker::SlidingWindow;
/// use std::time::Duration;
///
/// let by_count = SlidingWindow::count(100);
/// let by_time = SlidingWindow::time(Duration::from_secs(10));
/// assert_eq!(by_time, SlidingWindow::Time { length: Duration::from_secs(10), buckets: 10 });
/// # let _ = by_count;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `calls` calls, however old.
    Count {
        /// How many calls the window holds.
        calls: u32,
    },
    /// The calls of the last `length`, counted in `buckets` buckets: the window slides one
    /// bucket (`length / buckets`) at a time, so it covers between `length - length / buckets`
    /// and `length` of history.
    Time {
        /// How much history the window covers.
        length: Duration,
        /// How many buckets it is divided into.
        buckets: u32,
    },
}

impl SlidingWindow {
    /// A count-based window of the last `calls` calls.
    pub fn count(calls: u32) -> Self {
        SlidingWindow::Count { calls }
    }

    /// A time-based window of `length`, in 10 buckets (so it slides by a tenth of its length).
    pub fn time(length: Duration) -> Self {
        SlidingWindow::Time {
            length,
            buckets: 10,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            SlidingWindow::Count { calls: 0 } => Err(ConfigError::EmptyWindow("0 calls")),
            SlidingWindow::Count { calls } if calls > MAX_WINDOW_CALLS => Err(
                ConfigError::WindowTooLarge("a count-based window holds at most 1 000 000 calls"),
            ),
            SlidingWindow::Count { .. } => Ok(()),
            SlidingWindow::Time { length, .. } if length.is_zero() => {
                Err(ConfigError::EmptyWindow("zero length"))
            }
            SlidingWindow::Time { buckets: 0, .. } => Err(ConfigError::EmptyWindow("0 buckets")),
            SlidingWindow::Time { buckets, .. } if buckets > MAX_WINDOW_BUCKETS => Err(
                ConfigError::WindowTooLarge("a time-based window has at most 1 000 buckets"),
            ),
            SlidingWindow::Time { length, buckets }
                if length / buckets < Duration::from_millis(1) =>
            {
                Err(ConfigError::WindowTooLarge(
                    "time-based buckets must be at least 1 ms long",
                ))
            }
            SlidingWindow::Time { .. } => Ok(()),
        }
    }
}

/// The slow-call rule: calls slower than `threshold` count as slow, and the circuit opens when
/// at least `rate_percent` % of the window's calls were slow.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, SlowCalls};
/// use std::time::Duration;
///
/// // Analytics queries are slow by design: only count calls over 10 s, and only at 90 %.
/// let config = BreakerConfig {
///     slow_calls: Some(SlowCalls { threshold: Duration::from_secs(10), rate_percent: 90.0 }),
///     ..BreakerConfig::default()
/// };
/// assert!(Breaker::new("analytics", config).is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlowCalls {
    /// A call that takes longer than this is slow (even if it succeeds).
    pub threshold: Duration,
    /// The slow-call percentage, in `(0, 100]`, at or above which the circuit opens.
    pub rate_percent: f64,
}

impl Default for SlowCalls {
    /// 2 s / 80 %: a healthy MongoDB answers well under 2 s; 80 % keeps a burst of heavy
    /// but legitimate queries (reports, large scans) from tripping the breaker.
    fn default() -> Self {
        Self {
            threshold: Duration::from_secs(2),
            rate_percent: 80.0,
        }
    }
}

/// How a [`Breaker`](crate::Breaker) decides to open and when it tries again.
///
/// Every field is public; start from [`BreakerConfig::default`] and change what you need.
/// [`Breaker::new`](crate::Breaker::new) validates it and returns a [`ConfigError`] for values
/// that cannot work.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, SlidingWindow};
/// use std::time::Duration;
///
/// let config = BreakerConfig {
///     window: SlidingWindow::time(Duration::from_secs(30)),
///     minimum_calls: 50,
///     ..BreakerConfig::default()
/// };
/// assert!(Breaker::new("orders", config).is_ok());
///
/// let nonsense = BreakerConfig { failure_rate_percent: 150.0, ..BreakerConfig::default() };
/// assert!(Breaker::new("orders", nonsense).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerConfig {
    /// The calls the rates are computed over. Default: the last 100 calls — enough for a rate
    /// to mean something, and recent enough to react within seconds under load.
    pub window: SlidingWindow,
    /// No rate is evaluated until the window holds this many calls. Default: 20, so that a
    /// handful of failures on a quiet service does not open the circuit.
    pub minimum_calls: u32,
    /// The failure percentage, in `(0, 100]`, at or above which the circuit opens.
    /// Default: 50 % — half of the calls failing is an outage, not noise.
    pub failure_rate_percent: f64,
    /// The slow-call rule, or `None` to ignore durations. Default: [`SlowCalls::default`].
    pub slow_calls: Option<SlowCalls>,
    /// Opens the circuit after this many failures in a row, whatever the window says, or
    /// `None` to disable. Default: 5 — catches a hard outage on a quiet service before
    /// `minimum_calls` is reached.
    pub consecutive_failures: Option<u32>,
    /// How long the circuit stays open after its first trip. Default: 5 s — about the time a
    /// replica set needs to elect a new primary.
    pub open_wait: Duration,
    /// Each trip that follows a failed probe multiplies the wait by this factor (1 keeps it
    /// constant). Default: 2 — a longer outage is probed less and less often.
    pub open_wait_multiplier: f64,
    /// The wait never grows beyond this. Default: 60 s, so recovery is noticed within a minute.
    pub max_open_wait: Duration,
    /// How many probe calls the half-open circuit admits; all must succeed to close it.
    /// Default: 3 — one lucky call is not proof of recovery, three rarely lie.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: SlidingWindow::count(100),
            minimum_calls: 20,
            failure_rate_percent: 50.0,
            slow_calls: Some(SlowCalls::default()),
            consecutive_failures: Some(5),
            open_wait: Duration::from_secs(5),
            open_wait_multiplier: 2.0,
            max_open_wait: Duration::from_secs(60),
            half_open_probes: 3,
        }
    }
}

impl BreakerConfig {
    /// Checks that the configuration can work; [`Breaker::new`](crate::Breaker::new) calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.window.validate()?;
        if self.minimum_calls == 0 {
            return Err(ConfigError::Zero("minimum_calls"));
        }
        if let SlidingWindow::Count { calls } = self.window
            && self.minimum_calls > calls
        {
            return Err(ConfigError::MinimumCallsExceedWindow {
                minimum_calls: self.minimum_calls,
                window: calls,
            });
        }
        check_rate("failure_rate_percent", self.failure_rate_percent)?;
        if let Some(slow) = self.slow_calls {
            check_rate("slow_calls.rate_percent", slow.rate_percent)?;
            if slow.threshold.is_zero() {
                return Err(ConfigError::ZeroDuration("slow_calls.threshold"));
            }
        }
        if self.consecutive_failures == Some(0) {
            return Err(ConfigError::Zero("consecutive_failures"));
        }
        if self.open_wait.is_zero() {
            return Err(ConfigError::ZeroDuration("open_wait"));
        }
        if !self.open_wait_multiplier.is_finite() || self.open_wait_multiplier < 1.0 {
            return Err(ConfigError::InvalidMultiplier(self.open_wait_multiplier));
        }
        if self.max_open_wait < self.open_wait {
            return Err(ConfigError::MaxOpenWaitBelowOpenWait {
                initial: self.open_wait,
                max: self.max_open_wait,
            });
        }
        if self.half_open_probes == 0 {
            return Err(ConfigError::Zero("half_open_probes"));
        }
        Ok(())
    }

    /// The wait after the `trip`-th consecutive trip (1 for the first).
    pub(crate) fn open_wait_for(&self, trip: u32) -> Duration {
        let exponent = i32::try_from(trip.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.open_wait_multiplier.powi(exponent);
        // Saturate instead of panicking: a long outage must not overflow a Duration.
        Duration::try_from_secs_f64(self.open_wait.as_secs_f64() * factor)
            .map_or(self.max_open_wait, |wait| wait.min(self.max_open_wait))
    }
}

fn check_rate(field: &'static str, value: f64) -> Result<(), ConfigError> {
    // Written so that NaN fails too.
    if value > 0.0 && value <= 100.0 {
        Ok(())
    } else {
        Err(ConfigError::RateOutOfRange { field, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_wait_doubles_up_to_the_maximum() {
        let config = BreakerConfig::default();
        let waits: Vec<u64> = (1..=6).map(|t| config.open_wait_for(t).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(config.open_wait_for(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn constant_wait_with_multiplier_one() {
        let config = BreakerConfig {
            open_wait_multiplier: 1.0,
            ..BreakerConfig::default()
        };
        assert_eq!(config.open_wait_for(10), Duration::from_secs(5));
    }
}
