//! Capped exponential backoff: the delay before each retry, with a [`Jitter`] strategy.

use std::time::Duration;

use crate::{ConfigError, Jitter};

/// Backoff settings as plain data (see [`Backoff`] for the validated form).
///
/// Defaults, and why:
/// * `base` = 100 ms: long enough for a dropped connection to be replaced, short enough that a
///   read retried once still answers a user quickly;
/// * `cap` = 2 s: with the default 3 attempts the cap is rarely reached; longer waits are the
///   circuit breaker's and the health gate's job, not a request's;
/// * `multiplier` = 2: the classic doubling;
/// * `jitter` = [`Jitter::Full`]: AWS's measurements show it spreads a herd best.
///
/// ```
/// use keel_retry::{BackoffConfig, Jitter};
/// use std::time::Duration;
///
/// let slow_and_steady = BackoffConfig {
///     base: Duration::from_millis(250),
///     jitter: Jitter::Equal,
///     ..BackoffConfig::default()
/// };
/// assert_eq!(slow_and_steady.cap, Duration::from_secs(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// No delay is ever longer than this (a `retry_after` hint from the server may still be).
    pub cap: Duration,
    /// Growth factor per retry; must be finite and ≥ 1.
    pub multiplier: f64,
    /// How delays are randomised.
    pub jitter: Jitter,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: Jitter::Full,
        }
    }
}

/// A validated backoff: computes each retry's delay from a uniform random number.
///
/// The functions are pure (the random number is an argument), which makes every bound testable.
///
/// ```
/// use keel_retry::{Backoff, BackoffConfig, Jitter};
/// use std::time::Duration;
///
/// let backoff = Backoff::new(BackoffConfig {
///     base: Duration::from_millis(100),
///     cap: Duration::from_secs(1),
///     multiplier: 2.0,
///     jitter: Jitter::None,
/// })?;
/// let delays: Vec<_> = (0..5).map(|retry| backoff.delay(retry, Duration::ZERO, 0.5)).collect();
/// assert_eq!(delays, [100, 200, 400, 800, 1000].map(Duration::from_millis));
/// # Ok::<(), keel_retry::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    multiplier: f64,
    jitter: Jitter,
}

impl Backoff {
    /// Validates `config`: `base ≤ cap` and a finite `multiplier ≥ 1`.
    pub fn new(config: BackoffConfig) -> Result<Self, ConfigError> {
        let BackoffConfig {
            base,
            cap,
            multiplier,
            jitter,
        } = config;
        if cap < base {
            return Err(ConfigError::CapBelowBase { base, cap });
        }
        if !multiplier.is_finite() || multiplier < 1.0 {
            return Err(ConfigError::InvalidMultiplier(multiplier));
        }
        Ok(Self {
            base,
            cap,
            multiplier,
            jitter,
        })
    }

    /// The jitter strategy.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The base delay.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The cap.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The un-jittered delay before retry number `retry` (0 for the first retry):
    /// `min(cap, base × multiplier^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exponent);
        // `secs` may be infinite after many retries; anything past the cap is the cap.
        Duration::try_from_secs_f64(secs)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The range `[low, high]` the delay before retry `retry` is drawn from.
    ///
    /// `previous` is the delay used before the last retry (only [`Jitter::Decorrelated`] uses
    /// it; pass [`Duration::ZERO`] before the first retry, which counts as `base`).
    pub fn bounds(&self, retry: u32, previous: Duration) -> (Duration, Duration) {
        match self.jitter {
            Jitter::None => {
                let exp = self.ceiling(retry);
                (exp, exp)
            }
            Jitter::Full => (Duration::ZERO, self.ceiling(retry)),
            Jitter::Equal => {
                let exp = self.ceiling(retry);
                (exp / 2, exp)
            }
            Jitter::Decorrelated => {
                let previous = previous.max(self.base);
                let high = previous.saturating_mul(3).min(self.cap).max(self.base);
                (self.base, high)
            }
        }
    }

    /// The delay before retry `retry`, with `unit` a uniform random number in `[0, 1)`
    /// (values outside are clamped). Always within [`bounds`](Backoff::bounds).
    pub fn delay(&self, retry: u32, previous: Duration, unit: f64) -> Duration {
        let (low, high) = self.bounds(retry, previous);
        let spread = high.saturating_sub(low);
        // `unit < 1`, so this never exceeds `spread`; the `min` only guards float rounding.
        let offset = spread.mul_f64(crate::jitter::clamp_unit(unit)).min(spread);
        low + offset
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: BackoffConfig::default().base,
            cap: BackoffConfig::default().cap,
            multiplier: BackoffConfig::default().multiplier,
            jitter: BackoffConfig::default().jitter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn backoff(jitter: Jitter) -> Backoff {
        Backoff::new(BackoffConfig {
            base: ms(100),
            cap: ms(1000),
            multiplier: 2.0,
            jitter,
        })
        .unwrap()
    }

    #[test]
    fn no_jitter_doubles_up_to_the_cap() {
        let b = backoff(Jitter::None);
        let delays: Vec<_> = (0..6).map(|r| b.delay(r, Duration::ZERO, 0.9)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000].map(ms));
        assert_eq!(b.ceiling(u32::MAX), ms(1000));
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let b = backoff(Jitter::Full);
        assert_eq!(b.delay(2, Duration::ZERO, 0.0), ms(0));
        assert_eq!(b.delay(2, Duration::ZERO, 0.5), ms(200));
        assert_eq!(b.bounds(2, Duration::ZERO), (ms(0), ms(400)));
    }

    #[test]
    fn equal_jitter_keeps_half() {
        let b = backoff(Jitter::Equal);
        assert_eq!(b.delay(2, Duration::ZERO, 0.0), ms(200));
        assert_eq!(b.delay(2, Duration::ZERO, 0.5), ms(300));
        assert_eq!(b.bounds(5, Duration::ZERO), (ms(500), ms(1000)));
    }

    #[test]
    fn decorrelated_grows_from_the_previous_delay() {
        let b = backoff(Jitter::Decorrelated);
        assert_eq!(b.bounds(0, Duration::ZERO), (ms(100), ms(300)));
        assert_eq!(b.delay(0, Duration::ZERO, 0.5), ms(200));
        assert_eq!(b.bounds(1, ms(200)), (ms(100), ms(600)));
        assert_eq!(b.bounds(9, ms(900)), (ms(100), ms(1000)));
    }

    #[test]
    fn invalid_settings_are_typed_errors() {
        let bad_cap = BackoffConfig {
            cap: ms(10),
            ..BackoffConfig::default()
        };
        assert_eq!(
            Backoff::new(bad_cap),
            Err(ConfigError::CapBelowBase {
                base: ms(100),
                cap: ms(10)
            })
        );
        for multiplier in [0.5, f64::NAN, f64::INFINITY, -2.0] {
            let config = BackoffConfig {
                multiplier,
                ..BackoffConfig::default()
            };
            assert!(matches!(
                Backoff::new(config),
                Err(ConfigError::InvalidMultiplier(_))
            ));
        }
    }

    #[test]
    fn default_is_the_validated_default_config() {
        assert_eq!(
            Backoff::new(BackoffConfig::default()),
            Ok(Backoff::default())
        );
    }
}
