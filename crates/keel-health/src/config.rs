//! The monitor's settings: check interval and jitter, the window, thresholds with hysteresis,
//! and recovery. Every default says why.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

mod checks;
mod duration_threshold;

pub use checks::SettingError;

/// A level that raises an alert and a lower level that clears it, each only after the value has
/// stayed past it for a number of evaluations in a row: the gap and the counts are what stop an
/// alert from flapping when a value hovers around one level.
///
/// "Higher is worse": an alert is raised when `value >= raise_at` for `raise_after` evaluations
/// in a row and cleared when `value <= clear_at` for `clear_after` evaluations in a row.
///
/// ```
/// use std::time::Duration;
/// use keel_health::Threshold;
/// let latency = Threshold::new(Duration::from_millis(500), Duration::from_millis(250));
/// assert!(latency.validate("latency").is_ok());
/// let backwards = Threshold::new(0.1, 0.5);
/// assert!(backwards.validate("error_rate").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold<T> {
    /// The level at or above which the alert is raised.
    pub raise_at: T,
    /// The level at or below which the alert is cleared.
    pub clear_at: T,
    /// Evaluations in a row at or above `raise_at` before raising.
    pub raise_after: u32,
    /// Evaluations in a row at or below `clear_at` before clearing.
    pub clear_after: u32,
}

impl<T: PartialOrd + Copy + std::fmt::Debug> Threshold<T> {
    /// A threshold raised after 3 evaluations past `raise_at` and cleared after 3 at or below
    /// `clear_at`: with the default 5 s interval an alert reacts within 15 s and a single odd
    /// value never raises or clears one.
    pub fn new(raise_at: T, clear_at: T) -> Self {
        Self {
            raise_at,
            clear_at,
            raise_after: 3,
            clear_after: 3,
        }
    }

    /// Sets how many evaluations in a row raise and clear the alert.
    #[must_use]
    pub fn counts(mut self, raise_after: u32, clear_after: u32) -> Self {
        self.raise_after = raise_after;
        self.clear_after = clear_after;
        self
    }

    /// Checks `clear_at <= raise_at` and both counts at least 1.
    pub fn validate(&self, field: &'static str) -> Result<(), ConfigError> {
        if self.raise_after == 0 || self.clear_after == 0 {
            return Err(ConfigError::ZeroCount { field });
        }
        // Incomparable levels (a NaN) are refused too.
        let ordered = matches!(
            self.clear_at.partial_cmp(&self.raise_at),
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        );
        if !ordered {
            return Err(ConfigError::ClearAboveRaise {
                field,
                raise_at: format!("{:?}", self.raise_at),
                clear_at: format!("{:?}", self.clear_at),
            });
        }
        Ok(())
    }
}

/// When the monitor asks pool-core to replace the driver client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Whether the monitor resets the client at all. Default true: a reset is cheap next to an
    /// outage, and pool-core refuses resets that come too fast.
    pub enabled: bool,
    /// Failed checks in a row, while the driver shows no progress, before a reset. Default 5:
    /// the driver reconnects by itself after most outages; only a client stuck well past its
    /// own heartbeat needs a fresh pool.
    pub after_failed_checks: u32,
    /// Fewest time between two resets asked by the monitor. Default 60 s: twice pool-core's own
    /// default `reset_min_interval`, since every reset drops every pooled connection.
    #[serde(with = "humantime_serde")]
    pub min_interval: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            after_failed_checks: 5,
            min_interval: Duration::from_secs(60),
        }
    }
}

/// The health monitor's settings. They read from a TOML section or any serde format, durations
/// written with a unit (`"5s"`); `pool_max_size` is not read (it is the pool's own `max_size`).
///
/// ```
/// use std::time::Duration;
/// use keel_health::HealthConfig;
/// let mut config = HealthConfig::default();
/// config.interval = Duration::from_secs(1);
/// config.validate()?;
/// # Ok::<(), keel_health::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthConfig {
    /// Time between checks. Default 5 s: twice as often as Kubernetes' default probe period, so
    /// a probe never reads a stale verdict, and one `ping` per 5 s costs the server nothing.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Random spread of each interval, as a fraction (0.1 = ±10 %). Default 0.1, so many
    /// instances started together do not ping in lock-step.
    pub jitter: f64,
    /// A check slower than this fails with class `timeout`. Default 2 s: a ping is the cheapest
    /// command there is; two seconds means the server or the network is in trouble.
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
    /// The window for latency p99 and error rate. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Samples (checks + operations) needed in the window before p99 and error rate count.
    /// Default 5: a rate over two samples is noise.
    pub min_samples: u32,
    /// p99 latency of successful checks. Default raise at 500 ms, clear at 250 ms.
    #[serde(with = "duration_threshold")]
    pub latency: Threshold<Duration>,
    /// Failed checks and infrastructure operation errors over all (0–1). Default raise at 0.25,
    /// clear at 0.05.
    pub error_rate: Threshold<f64>,
    /// Pool connections in use over `pool_max_size` (0–1). Default raise at 0.9, clear at 0.7.
    pub pool_saturation: Threshold<f64>,
    /// Failed checks in a row. Default raise at 3 (one evaluation), clear at 0 after 2 checks:
    /// two successes in a row end an outage.
    pub failed_checks: Threshold<u32>,
    /// The pool's maximum size, for saturation. Default 10, the driver's own default
    /// `maxPoolSize`; Keel's configuration sets the configured one. Not read from files.
    #[serde(skip)]
    pub pool_max_size: u32,
    /// Automatic recovery.
    pub recovery: RecoveryConfig,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            jitter: 0.1,
            check_timeout: Duration::from_secs(2),
            window: Duration::from_secs(60),
            min_samples: 5,
            latency: Threshold::new(Duration::from_millis(500), Duration::from_millis(250)),
            error_rate: Threshold::new(0.25, 0.05),
            pool_saturation: Threshold::new(0.9, 0.7),
            failed_checks: Threshold::new(3, 0).counts(1, 2),
            pool_max_size: 10,
            recovery: RecoveryConfig::default(),
        }
    }
}

impl HealthConfig {
    /// Checks every setting; the first problem found is returned
    /// ([`HealthConfig::problems`] lists them all).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.checks().into_iter().next() {
            Some(check) => Err(check.error),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(HealthConfig::default().validate(), Ok(()));
    }

    #[test]
    fn every_bad_value_is_a_typed_error() {
        let bad: [fn(&mut HealthConfig); 9] = [
            |c| c.interval = Duration::ZERO,
            |c| c.jitter = 1.0,
            |c| c.jitter = f64::NAN,
            |c| c.min_samples = 0,
            |c| c.pool_max_size = 0,
            |c| c.recovery.after_failed_checks = 0,
            |c| c.error_rate.raise_at = 1.5,
            |c| c.latency = Threshold::new(Duration::from_millis(1), Duration::from_secs(1)),
            |c| c.failed_checks.raise_after = 0,
        ];
        for (i, change) in bad.iter().enumerate() {
            let mut config = HealthConfig::default();
            change(&mut config);
            assert!(config.validate().is_err(), "case {i} was accepted");
        }
    }

    #[test]
    fn every_bad_value_is_also_a_problem_naming_its_field() {
        let mut config = HealthConfig::default();
        config.latency.clear_at = Duration::from_secs(1);
        config.recovery.after_failed_checks = 0;
        config.pool_saturation.raise_at = 2.0;
        config.failed_checks.clear_after = 0;
        let fields: Vec<_> = config.problems().iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "recovery.after_failed_checks",
                "pool_saturation.raise_at",
                "latency.clear_at",
                "failed_checks.clear_after"
            ]
        );
        assert_eq!(
            config.validate().unwrap_err(),
            ConfigError::ZeroCount {
                field: "recovery.after_failed_checks"
            }
        );
    }

    #[test]
    fn reads_from_toml_with_durations_as_text_and_every_field_has_a_reason() {
        let config: HealthConfig = toml::from_str(
            "interval = \"1s\"\n[latency]\nraise_at = \"1s\"\nclear_at = \"300ms\"\nraise_after = 2\nclear_after = 4\n",
        )
        .unwrap();
        assert_eq!(config.interval, Duration::from_secs(1));
        assert_eq!(
            config.latency,
            Threshold::new(Duration::from_secs(1), Duration::from_millis(300)).counts(2, 4)
        );
        let table = toml::Table::try_from(HealthConfig::default()).unwrap();
        let mut leaves = Vec::new();
        for (key, value) in &table {
            match value.as_table() {
                Some(inner) => leaves.extend(inner.keys().map(|k| format!("{key}.{k}"))),
                None => leaves.push(key.clone()),
            }
        }
        let mut reasons: Vec<_> = HealthConfig::REASONS
            .iter()
            .map(|(f, _)| f.to_string())
            .collect();
        leaves.sort_unstable();
        reasons.sort_unstable();
        assert_eq!(leaves, reasons);
    }

    #[test]
    fn nan_levels_are_refused() {
        assert!(Threshold::new(f64::NAN, 0.1).validate("x").is_err());
    }
}
