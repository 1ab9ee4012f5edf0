//! [`BreakerSettings`]: the breaker's settings as a service configures them (a TOML section,
//! environment variables), with Keel's defaults and their reasons, validated here once.

use std::time::Duration;

use keel_settings::shown;
use serde::{Deserialize, Serialize};

use crate::{BreakerConfig, MAX_WINDOW_CALLS, SlidingWindow, SlowCalls};

/// The breaker's settings, as read from a file section or environment variables: rates are
/// fractions (0.5 = 50 %), durations are written with a unit (`"5s"`), the window counts calls.
/// [`BreakerSettings::to_config`] turns them into the [`BreakerConfig`] a
/// [`Breaker`](crate::Breaker) takes.
///
/// ```
/// use keel_breaker::{Breaker, BreakerSettings};
/// let settings: BreakerSettings = toml::from_str("window_size = 50\nopen_wait = \"2s\"").unwrap();
/// assert!(settings.problems().is_empty());
/// assert!(Breaker::new("orders", settings.to_config()).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Failure fraction over the window, in (0, 1], at which the breaker opens.
    pub failure_rate_threshold: f64,
    /// Number of most recent calls the rates are computed over (a count-based window).
    pub window_size: u32,
    /// Calls needed in the window before rates are trusted; at most `window_size`.
    pub minimum_calls: u32,
    /// A call slower than this counts as slow.
    #[serde(with = "humantime_serde")]
    pub slow_call_threshold: Duration,
    /// Slow fraction, in (0, 1], at which the breaker opens; 1 turns the slow-call rule off
    /// (slowness alone never opens the breaker).
    pub slow_call_rate_threshold: f64,
    /// Consecutive failures that open the breaker at once, whatever the window says.
    pub consecutive_failures: u32,
    /// Time the breaker stays open before letting probes through.
    #[serde(with = "humantime_serde")]
    pub open_wait: Duration,
    /// Each trip that follows a failed probe multiplies the open time by this (1 keeps it
    /// constant).
    pub open_wait_multiplier: f64,
    /// Ceiling for the open time, which grows each time a probe fails.
    #[serde(with = "humantime_serde")]
    pub max_open_wait: Duration,
    /// Probe calls allowed while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 0.5,
            window_size: 100,
            minimum_calls: 20,
            slow_call_threshold: Duration::from_secs(5),
            slow_call_rate_threshold: 1.0,
            consecutive_failures: 5,
            open_wait: Duration::from_secs(5),
            open_wait_multiplier: 2.0,
            max_open_wait: Duration::from_secs(60),
            half_open_probes: 3,
        }
    }
}

pub use keel_settings::SettingError;

impl BreakerSettings {
    /// Every field, in the order listings show them, with why its default is what it is.
    pub const REASONS: &'static [(&'static str, &'static str)] = &[
        (
            "failure_rate_threshold",
            "opens when most calls fail, not on a blip (Resilience4j's default)",
        ),
        (
            "window_size",
            "enough calls for a stable rate, recent enough to react within seconds under load",
        ),
        (
            "minimum_calls",
            "a handful of calls is not evidence; 20 avoids tripping on noise",
        ),
        (
            "slow_call_threshold",
            "a call slower than this is as good as failed for most request paths",
        ),
        (
            "slow_call_rate_threshold",
            "slowness alone does not open the breaker (1 turns the rule off); opt in to lower it",
        ),
        (
            "consecutive_failures",
            "a hard outage opens the breaker at once, without waiting for the window",
        ),
        (
            "open_wait",
            "about the time a failover takes before probing again",
        ),
        (
            "open_wait_multiplier",
            "doubling probes a longer outage less and less often, yet a few trips reach the maximum",
        ),
        (
            "max_open_wait",
            "caps the doubling wait so recovery is noticed within a minute",
        ),
        (
            "half_open_probes",
            "a few successes prove recovery without a thundering herd",
        ),
    ];

    /// Every problem with these settings, in field order; empty exactly when
    /// [`to_config`](Self::to_config) gives a configuration [`Breaker::new`](crate::Breaker::new)
    /// accepts.
    ///
    /// ```
    /// let mut settings = keel_breaker::BreakerSettings::default();
    /// settings.half_open_probes = 0;
    /// let problem = &settings.problems()[0];
    /// assert_eq!(problem.field, "half_open_probes");
    /// assert!(problem.to_string().contains("fix:"));
    /// ```
    pub fn problems(&self) -> Vec<SettingError> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("failure_rate_threshold", self.failure_rate_threshold),
            ("slow_call_rate_threshold", self.slow_call_rate_threshold),
        ] {
            // Written so that NaN fails too.
            if !(value > 0.0 && value <= 1.0) {
                problems.push(SettingError::new(
                    field,
                    value.to_string(),
                    "must be above 0 and at most 1",
                    "write a fraction such as 0.5",
                ));
            }
        }
        for (field, value) in [
            ("window_size", self.window_size),
            ("minimum_calls", self.minimum_calls),
            ("consecutive_failures", self.consecutive_failures),
            ("half_open_probes", self.half_open_probes),
        ] {
            if value == 0 {
                problems.push(SettingError::new(
                    field,
                    "0",
                    "must be at least 1",
                    "write a whole number of 1 or more",
                ));
            }
        }
        if self.window_size > MAX_WINDOW_CALLS {
            problems.push(SettingError::new(
                "window_size",
                self.window_size.to_string(),
                "a count-based window holds at most 1000000 calls",
                "make it 1000000 or less; 100 is plenty for a stable rate",
            ));
        }
        if self.minimum_calls > self.window_size && self.window_size > 0 {
            problems.push(SettingError::new(
                "minimum_calls",
                self.minimum_calls.to_string(),
                format!(
                    "larger than breaker.window_size ({}), so the breaker could never judge",
                    self.window_size
                ),
                "make it at most the window size",
            ));
        }
        if self.slow_call_threshold.is_zero() {
            problems.push(SettingError::zero_duration(
                "slow_call_threshold",
                "zero would count every call as slow",
                "5s",
            ));
        }
        if self.open_wait.is_zero() {
            problems.push(SettingError::zero_duration(
                "open_wait",
                "zero would probe again at once",
                "5s",
            ));
        }
        if !self.open_wait_multiplier.is_finite() || self.open_wait_multiplier < 1.0 {
            problems.push(SettingError::new(
                "open_wait_multiplier",
                self.open_wait_multiplier.to_string(),
                "must be a number of at least 1",
                "write 2 to double the wait on each failed probe, or 1 to keep it constant",
            ));
        }
        if self.open_wait > self.max_open_wait {
            problems.push(SettingError::new(
                "open_wait",
                shown(self.open_wait),
                format!(
                    "longer than breaker.max_open_wait ({})",
                    shown(self.max_open_wait)
                ),
                "make the open wait at most the maximum",
            ));
        }
        problems
    }

    /// The breaker's configuration: fractions become percentages, a slow-call rate of 1 turns
    /// the slow-call rule off, and the open wait doubles on repeated trips.
    pub fn to_config(&self) -> BreakerConfig {
        BreakerConfig {
            window: SlidingWindow::count(self.window_size),
            minimum_calls: self.minimum_calls,
            failure_rate_percent: self.failure_rate_threshold * 100.0,
            slow_calls: (self.slow_call_rate_threshold < 1.0).then_some(SlowCalls {
                threshold: self.slow_call_threshold,
                rate_percent: self.slow_call_rate_threshold * 100.0,
            }),
            consecutive_failures: Some(self.consecutive_failures),
            open_wait: self.open_wait,
            open_wait_multiplier: self.open_wait_multiplier,
            max_open_wait: self.max_open_wait,
            half_open_probes: self.half_open_probes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_field_has_a_reason() {
        let settings = BreakerSettings::default();
        assert!(settings.problems().is_empty());
        let table = toml::Table::try_from(&settings).unwrap();
        let mut fields: Vec<_> = table.keys().map(String::as_str).collect();
        let mut reasons: Vec<_> = BreakerSettings::REASONS.iter().map(|(f, _)| *f).collect();
        fields.sort_unstable();
        reasons.sort_unstable();
        assert_eq!(fields, reasons);
    }

    #[test]
    fn a_window_the_breaker_refuses_is_a_problem_here_too() {
        let settings = BreakerSettings {
            window_size: MAX_WINDOW_CALLS + 1,
            ..BreakerSettings::default()
        };
        assert!(settings.to_config().validate().is_err());
        let problems = settings.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "window_size");
    }

    #[test]
    fn settings_without_problems_always_make_a_valid_breaker() {
        let variants: [fn(&mut BreakerSettings); 7] = [
            |_| {},
            |s| s.window_size = MAX_WINDOW_CALLS,
            |s| s.slow_call_rate_threshold = 0.01,
            |s| s.failure_rate_threshold = 1.0,
            |s| (s.minimum_calls, s.window_size) = (1, 1),
            |s| s.open_wait = s.max_open_wait,
            |s| s.open_wait_multiplier = 1.0,
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut settings = BreakerSettings::default();
            change(&mut settings);
            assert!(settings.problems().is_empty(), "case {i}");
            assert_eq!(settings.to_config().validate(), Ok(()), "case {i}");
        }
    }

    #[test]
    fn a_multiplier_below_one_is_a_problem_the_breaker_would_refuse_too() {
        let settings = BreakerSettings {
            open_wait_multiplier: 0.5,
            ..BreakerSettings::default()
        };
        assert!(settings.to_config().validate().is_err());
        assert_eq!(settings.problems()[0].field, "open_wait_multiplier");
    }

    #[test]
    fn a_slow_call_rate_of_one_turns_the_rule_off() {
        assert_eq!(BreakerSettings::default().to_config().slow_calls, None);
        let on = BreakerSettings {
            slow_call_rate_threshold: 0.8,
            ..BreakerSettings::default()
        };
        let slow = on.to_config().slow_calls.unwrap();
        assert_eq!(slow.threshold, Duration::from_secs(5));
        assert!((slow.rate_percent - 80.0).abs() < 1e-9);
        assert_eq!(on.to_config().failure_rate_percent, 50.0);
    }
}
