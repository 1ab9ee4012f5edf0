//! Jitter strategies and the injectable source of randomness they draw from.

use std::{fmt, sync::Mutex};

use rand::{Rng, SeedableRng, rngs::SmallRng};

/// How a backoff delay is randomised, as defined in AWS's "Exponential Backoff And Jitter".
///
/// With `exp = min(cap, base × multiplier^retry)`:
///
/// | strategy | delay | spread |
/// |---|---|---|
/// | [`None`](Jitter::None) | `exp` | none: every client retries in lock-step |
/// | [`Full`](Jitter::Full) | `random(0, exp)` | widest; fewest total calls |
/// | [`Equal`](Jitter::Equal) | `exp/2 + random(0, exp/2)` | never shorter than half |
/// | [`Decorrelated`](Jitter::Decorrelated) | `min(cap, random(base, previous × 3))` | grows from the previous delay |
///
/// ```
/// use keel_retry::{Backoff, BackoffConfig, Jitter};
/// use std::time::Duration;
///
/// let backoff = Backoff::new(BackoffConfig { jitter: Jitter::Equal, ..BackoffConfig::default() })?;
/// // Before the third retry: exp = 100 ms × 2² = 400 ms, so equal jitter waits 200..400 ms.
/// assert_eq!(backoff.bounds(2, Duration::ZERO), (Duration::from_millis(200), Duration::from_millis(400)));
/// # Ok::<(), keel_retry::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// Plain capped exponential backoff.
    None,
    /// Uniform in `[0, exp)`. The default: AWS found it spreads retries best for the least work.
    #[default]
    Full,
    /// Half fixed, half random: `exp/2 + random(0, exp/2)`.
    Equal,
    /// `min(cap, random(base, previous delay × 3))`, starting from `previous = base`.
    Decorrelated,
}

impl Jitter {
    /// Every strategy, for tables and exhaustive tests.
    pub const ALL: [Jitter; 4] = [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ];
}

/// A source of uniform random numbers in `[0, 1)` for jitter.
///
/// Injectable so tests and simulations are deterministic: use [`SeededJitter`] or
/// [`FixedJitter`] there, and the default [`ThreadRngJitter`] in production.
///
/// ```
/// use keel_retry::{JitterSource, RetryConfig, RetryIf, RetryLayer};
///
/// /// Always the middle of the range.
/// #[derive(Debug)]
/// struct Midpoint;
/// impl JitterSource for Midpoint {
///     fn unit(&self) -> f64 { 0.5 }
/// }
///
/// let layer = RetryLayer::new(RetryIf::new(|_: &()| true), RetryConfig::default())?
///     .with_jitter_source(Midpoint);
/// # let _ = layer;
/// # Ok::<(), keel_retry::ConfigError>(())
/// ```
pub trait JitterSource: Send + Sync + fmt::Debug {
    /// A number uniformly distributed in `[0, 1)`.
    fn unit(&self) -> f64;
}

/// Draws from the thread-local generator (`rand::rng()`): fast and lock-free. The default.
///
/// ```
/// use keel_retry::{JitterSource, ThreadRngJitter};
/// assert!((0.0..1.0).contains(&ThreadRngJitter.unit()));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadRngJitter;

impl JitterSource for ThreadRngJitter {
    fn unit(&self) -> f64 {
        rand::rng().random::<f64>()
    }
}

/// A seeded generator: the same seed gives the same sequence of delays.
///
/// ```
/// use keel_retry::{JitterSource, SeededJitter};
/// let (a, b) = (SeededJitter::new(7), SeededJitter::new(7));
/// assert_eq!(a.unit(), b.unit());
/// ```
#[derive(Debug)]
pub struct SeededJitter {
    rng: Mutex<SmallRng>,
}

impl SeededJitter {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
        }
    }
}

impl JitterSource for SeededJitter {
    fn unit(&self) -> f64 {
        // A poisoned lock only means another thread panicked mid-draw; the generator state is
        // still a valid generator state, so keep drawing from it.
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rng.random::<f64>()
    }
}

/// Always returns the same value (clamped into `[0, 1)`): exact delays in tests.
///
/// `FixedJitter(0.0)` gives the shortest delay a strategy allows, `FixedJitter(0.999…)` about
/// the longest.
///
/// ```
/// use keel_retry::{FixedJitter, JitterSource};
/// assert_eq!(FixedJitter(0.25).unit(), 0.25);
/// assert!(FixedJitter(2.0).unit() < 1.0, "clamped");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FixedJitter(pub f64);

impl JitterSource for FixedJitter {
    fn unit(&self) -> f64 {
        clamp_unit(self.0)
    }
}

/// Forces any value into `[0, 1)` so a misbehaving source can never stretch a delay past its
/// bounds (NaN counts as 0).
pub(crate) fn clamp_unit(value: f64) -> f64 {
    if value.is_nan() || value < 0.0 {
        0.0
    } else if value >= 1.0 {
        1.0 - f64::EPSILON
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_repeat_and_stay_in_range() {
        let (a, b) = (SeededJitter::new(42), SeededJitter::new(42));
        for _ in 0..1000 {
            let (x, y) = (a.unit(), b.unit());
            assert_eq!(x, y);
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn thread_rng_stays_in_range() {
        assert!((0..1000).all(|_| (0.0..1.0).contains(&ThreadRngJitter.unit())));
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        assert_eq!(FixedJitter(f64::NAN).unit(), 0.0);
        assert_eq!(FixedJitter(-3.0).unit(), 0.0);
        assert!(FixedJitter(7.0).unit() < 1.0);
        assert_eq!(FixedJitter(0.25).unit(), 0.25);
    }
}
