//! [`RetrySettings`]: the retry layer's settings as a service configures them (a TOML section,
//! environment variables), with Keel's defaults and their reasons, validated here once.

use std::time::Duration;

use keel_settings::shown;
use serde::{Deserialize, Serialize};

use crate::{BackoffConfig, BudgetConfig, Jitter, RetryConfig};

/// The retry layer's settings, as read from a file section or environment variables (durations
/// are written with a unit: `"100ms"`, `"2s"`). The deadline and the attempt timeout are not
/// here: they belong to the whole call and are given to [`RetrySettings::to_config`].
///
/// ```
/// use keel_retry::{Jitter, RetrySettings};
/// let settings: RetrySettings = toml::from_str("max_attempts = 5\njitter = \"equal\"").unwrap();
/// assert_eq!((settings.max_attempts, settings.jitter), (5, Jitter::Equal));
/// assert!(settings.problems().is_empty());
/// let config = settings.to_config(Some(std::time::Duration::from_secs(60)), None);
/// assert_eq!(config.max_attempts, 5);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Attempts in total, the first included; 1 turns layer retries off.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each following one.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Ceiling of the backoff.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How the backoff is randomised.
    pub jitter: Jitter,
    /// Retries allowed as a fraction of recent first attempts (0.2 = at most 20 % extra load).
    pub budget_ratio: f64,
    /// Retries per second always allowed, so a quiet service can still retry.
    pub min_retries_per_second: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            jitter: Jitter::Full,
            budget_ratio: 0.2,
            min_retries_per_second: 10,
        }
    }
}

pub use keel_settings::SettingError;

impl RetrySettings {
    /// Every field, in the order listings show them, with why its default is what it is.
    pub const REASONS: &'static [(&'static str, &'static str)] = &[
        (
            "max_attempts",
            "rides out a failover with backoff while at most tripling load; the budget caps it further",
        ),
        (
            "initial_backoff",
            "long enough for a new primary to be discovered, short enough to be invisible to users",
        ),
        (
            "max_backoff",
            "keeps retries within the attempt and deadline budget",
        ),
        (
            "jitter",
            "spreads retries of clients that failed together best (AWS backoff analysis)",
        ),
        (
            "budget_ratio",
            "retries add at most 20% load, so they cannot turn an overload into an outage",
        ),
        (
            "min_retries_per_second",
            "a quiet service can still retry when its ratio budget is tiny",
        ),
    ];

    /// Every problem with these settings, in field order; empty when they can work.
    ///
    /// ```
    /// let mut settings = keel_retry::RetrySettings::default();
    /// settings.max_attempts = 0;
    /// let problem = &settings.problems()[0];
    /// assert_eq!(problem.field, "max_attempts");
    /// assert!(problem.to_string().contains("fix:"));
    /// ```
    pub fn problems(&self) -> Vec<SettingError> {
        let mut problems = Vec::new();
        if self.max_attempts == 0 {
            problems.push(SettingError::new(
                "max_attempts",
                "0",
                "zero attempts would never run the operation",
                "set 1 to turn retries off, or 3",
            ));
        }
        if self.initial_backoff.is_zero() {
            problems.push(SettingError::zero_duration(
                "initial_backoff",
                "zero retries in a tight loop",
                "100ms",
            ));
        }
        if self.initial_backoff > self.max_backoff {
            problems.push(SettingError::new(
                "initial_backoff",
                shown(self.initial_backoff),
                format!(
                    "longer than retry.max_backoff ({})",
                    shown(self.max_backoff)
                ),
                "make the initial backoff at most the maximum",
            ));
        }
        if !(0.0..=1.0).contains(&self.budget_ratio) {
            problems.push(SettingError::new(
                "budget_ratio",
                self.budget_ratio.to_string(),
                "must be between 0 and 1",
                "write a fraction such as 0.2 (20% extra load)",
            ));
        }
        problems
    }

    /// The layer's configuration: these settings, bounded by the call's deadline
    /// (`total_timeout`) and the attempt timeout of the layer below.
    pub fn to_config(
        &self,
        total_timeout: Option<Duration>,
        attempt_timeout: Option<Duration>,
    ) -> RetryConfig {
        RetryConfig {
            max_attempts: self.max_attempts,
            backoff: BackoffConfig {
                base: self.initial_backoff,
                cap: self.max_backoff,
                multiplier: 2.0,
                jitter: self.jitter,
            },
            budget: Some(BudgetConfig {
                ratio: self.budget_ratio,
                min_per_sec: self.min_retries_per_second,
                ..BudgetConfig::default()
            }),
            total_timeout,
            attempt_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_field_has_a_reason() {
        let settings = RetrySettings::default();
        assert!(settings.problems().is_empty());
        let table = toml::Table::try_from(&settings).unwrap();
        let mut fields: Vec<_> = table.keys().map(String::as_str).collect();
        let mut reasons: Vec<_> = RetrySettings::REASONS.iter().map(|(f, _)| *f).collect();
        fields.sort_unstable();
        reasons.sort_unstable();
        assert_eq!(fields, reasons);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let settings = RetrySettings {
            max_attempts: 0,
            initial_backoff: Duration::from_secs(3),
            budget_ratio: 1.5,
            ..RetrySettings::default()
        };
        let fields: Vec<_> = settings.problems().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["max_attempts", "initial_backoff", "budget_ratio"]);
    }

    #[test]
    fn valid_settings_build_a_valid_layer() {
        let config = RetrySettings::default().to_config(Some(Duration::from_secs(60)), None);
        assert!(crate::RetryLayer::new(crate::RetryIf::new(|_: &()| true), config).is_ok());
    }

    #[test]
    fn durations_and_jitter_read_as_text() {
        let settings: RetrySettings =
            toml::from_str("initial_backoff = \"10ms\"\njitter = \"decorrelated\"\n").unwrap();
        assert_eq!(settings.initial_backoff, Duration::from_millis(10));
        assert_eq!(settings.jitter, Jitter::Decorrelated);
        let error = toml::from_str::<RetrySettings>("jitter = \"random\"\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("none, full, equal, decorrelated"),
            "{error}"
        );
    }
}
