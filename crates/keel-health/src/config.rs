//! The monitor's settings: check interval and jitter, the window, thresholds with hysteresis,
//! and recovery. Every default says why.

use std::time::Duration;

use crate::ConfigError;

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
#[derive(Clone, Copy, Debug, PartialEq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The health monitor's settings.
///
/// ```
/// use std::time::Duration;
/// use keel_health::HealthConfig;
/// let mut config = HealthConfig::default();
/// config.interval = Duration::from_secs(1);
/// config.validate()?;
/// # Ok::<(), keel_health::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HealthConfig {
    /// Time between checks. Default 5 s: twice as often as Kubernetes' default probe period, so
    /// a probe never reads a stale verdict, and one `ping` per 5 s costs the server nothing.
    pub interval: Duration,
    /// Random spread of each interval, as a fraction (0.1 = ±10 %). Default 0.1, so many
    /// instances started together do not ping in lock-step.
    pub jitter: f64,
    /// A check slower than this fails with class `timeout`. Default 2 s: a ping is the cheapest
    /// command there is; two seconds means the server or the network is in trouble.
    pub check_timeout: Duration,
    /// The window for latency p99 and error rate. Default 60 s.
    pub window: Duration,
    /// Samples (checks + operations) needed in the window before p99 and error rate count.
    /// Default 5: a rate over two samples is noise.
    pub min_samples: u32,
    /// p99 latency of successful checks. Default raise at 500 ms, clear at 250 ms.
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
    /// `maxPoolSize`; [`HealthConfig::from_keel_config`] takes the configured one.
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
    /// The defaults, with the pool size taken from Keel's configuration.
    pub fn from_keel_config(config: &keel_config::KeelConfig) -> Self {
        Self {
            pool_max_size: config.pool.max_size,
            ..Self::default()
        }
    }

    /// Checks every setting; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, duration) in [
            ("interval", self.interval),
            ("check_timeout", self.check_timeout),
            ("window", self.window),
            ("recovery.min_interval", self.recovery.min_interval),
        ] {
            if duration.is_zero() {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(ConfigError::BadJitter(self.jitter));
        }
        if self.min_samples == 0 {
            return Err(ConfigError::ZeroCount {
                field: "min_samples",
            });
        }
        if self.pool_max_size == 0 {
            return Err(ConfigError::ZeroCount {
                field: "pool_max_size",
            });
        }
        if self.recovery.after_failed_checks == 0 {
            return Err(ConfigError::ZeroCount {
                field: "recovery.after_failed_checks",
            });
        }
        for (field, threshold) in [
            ("error_rate", self.error_rate),
            ("pool_saturation", self.pool_saturation),
        ] {
            for value in [threshold.raise_at, threshold.clear_at] {
                if !(0.0..=1.0).contains(&value) {
                    return Err(ConfigError::BadRatio { field, value });
                }
            }
            threshold.validate(field)?;
        }
        self.latency.validate("latency")?;
        self.failed_checks.validate("failed_checks")?;
        Ok(())
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
    fn nan_levels_are_refused() {
        assert!(Threshold::new(f64::NAN, 0.1).validate("x").is_err());
    }
}
