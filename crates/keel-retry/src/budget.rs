//! The retry budget: retries may be at most a fixed share of recent requests, so an outage
//! does not multiply the load on the database.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

use crate::ConfigError;

/// Retry budget settings as plain data (see [`RetryBudget`]).
///
/// Defaults, and why (the same as tower's and Finagle's `TpsBudget`):
/// * `ratio` = 0.2: retries add at most 20 % to the load the database sees;
/// * `min_per_sec` = 10: a quiet client (few requests) may still retry a little;
/// * `window` = 10 s: long enough to smooth bursts, short enough to recover quickly.
///
/// ```
/// use keel_retry::{BudgetConfig, RetryConfig};
///
/// // At most one retry per ten requests, and no free retries for a quiet client.
/// let strict = RetryConfig {
///     budget: Some(BudgetConfig { ratio: 0.1, min_per_sec: 0, ..BudgetConfig::default() }),
///     ..RetryConfig::default()
/// };
/// # let _ = strict;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed per request seen in the window (0.2 = one retry per five requests).
    /// Finite, between 0 and 1000.
    pub ratio: f64,
    /// Retries always allowed per second of window, on top of the ratio.
    pub min_per_sec: u32,
    /// How long a request counts towards the budget: 1 s ..= 60 s.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_sec: 10,
            window: Duration::from_secs(10),
        }
    }
}

/// Precision of the ratio: deposits and withdrawals are counted in thousandths of a retry,
/// so the ratio is honoured to 0.001 and is never rounded *up*.
const UNITS_PER_RETRY: i64 = 1000;
/// The window is split into this many slots that expire one at a time.
const SLOTS: usize = 10;

/// A shared token bucket over a sliding window: each request deposits `ratio` of a retry, each
/// retry withdraws one, and a reserve of `min_per_sec × window` retries is always available.
///
/// Over any window, retries ≤ `ratio × requests + min_per_sec × window` — the guarantee that
/// keeps a thundering herd from forming. Uses `tokio::time::Instant`, so paused-time tests
/// control the window.
///
/// ```
/// use keel_retry::{BudgetConfig, RetryBudget};
/// use std::time::Duration;
///
/// let budget = RetryBudget::new(BudgetConfig {
///     ratio: 0.5,
///     min_per_sec: 0,
///     window: Duration::from_secs(10),
/// })?;
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.withdraw(), "two requests earn one retry");
/// assert!(!budget.withdraw(), "but not two");
/// # Ok::<(), keel_retry::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    deposit: i64,
    reserve: i64,
    slot_len: Duration,
    state: Mutex<Slots>,
}

#[derive(Debug)]
struct Slots {
    balance: [i64; SLOTS],
    current: usize,
    current_started: Instant,
}

impl RetryBudget {
    /// Validates `config` and builds an empty budget (only the reserve is available).
    pub fn new(config: BudgetConfig) -> Result<Self, ConfigError> {
        let BudgetConfig {
            ratio,
            min_per_sec,
            window,
        } = config;
        if !ratio.is_finite() || !(0.0..=1000.0).contains(&ratio) {
            return Err(ConfigError::InvalidRatio(ratio));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&window) {
            return Err(ConfigError::InvalidBudgetWindow(window));
        }
        // Floor (with a hair of tolerance for binary fractions such as 0.29 × 1000 =
        // 289.99…) so the budget never allows more than the configured ratio. The ratio is at
        // most 1000, so the product fits an i64 exactly.
        #[allow(clippy::cast_possible_truncation)]
        let deposit = (ratio * UNITS_PER_RETRY as f64 + 1e-6).floor() as i64;
        let reserve = i64::from(min_per_sec)
            .saturating_mul(window.as_secs() as i64)
            .saturating_mul(UNITS_PER_RETRY);
        Ok(Self {
            deposit,
            reserve,
            slot_len: window / SLOTS as u32,
            state: Mutex::new(Slots {
                balance: [0; SLOTS],
                current: 0,
                current_started: Instant::now(),
            }),
        })
    }

    /// Records one request (a first attempt): earns `ratio` of a retry.
    pub fn deposit(&self) {
        self.deposit_at(Instant::now());
    }

    /// [`deposit`](RetryBudget::deposit) with the time already read by the caller.
    pub(crate) fn deposit_at(&self, now: Instant) {
        let mut slots = self.slots();
        self.expire(&mut slots, now);
        let current = slots.current;
        slots.balance[current] = slots.balance[current].saturating_add(self.deposit);
    }

    /// Takes one retry from the budget; `false` (and nothing taken) when it is exhausted.
    pub fn withdraw(&self) -> bool {
        let mut slots = self.slots();
        self.expire(&mut slots, Instant::now());
        let available = slots
            .balance
            .iter()
            .fold(self.reserve, |sum, slot| sum.saturating_add(*slot));
        if available < UNITS_PER_RETRY {
            return false;
        }
        let current = slots.current;
        slots.balance[current] -= UNITS_PER_RETRY;
        true
    }

    /// How many whole retries the budget would allow right now.
    pub fn available(&self) -> u64 {
        let mut slots = self.slots();
        self.expire(&mut slots, Instant::now());
        let sum = slots
            .balance
            .iter()
            .fold(self.reserve, |sum, slot| sum.saturating_add(*slot));
        u64::try_from(sum / UNITS_PER_RETRY).unwrap_or(0)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The slots hold plain counters that are valid after any panic elsewhere.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Clears the slots whose time has passed, so only the last `window` counts.
    fn expire(&self, slots: &mut Slots, now: Instant) {
        let elapsed = now.saturating_duration_since(slots.current_started);
        if elapsed < self.slot_len {
            return;
        }
        let passed = (elapsed.as_nanos() / self.slot_len.as_nanos().max(1)) as u64;
        let clear = passed.min(SLOTS as u64) as usize;
        for _ in 0..clear {
            slots.current = (slots.current + 1) % SLOTS;
            slots.balance[slots.current] = 0;
        }
        slots.current_started += self
            .slot_len
            .saturating_mul(u32::try_from(passed).unwrap_or(u32::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, min_per_sec: u32) -> RetryBudget {
        RetryBudget::new(BudgetConfig {
            ratio,
            min_per_sec,
            window: Duration::from_secs(10),
        })
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn reserve_allows_min_per_sec_times_window() {
        let b = budget(0.0, 2);
        assert_eq!(b.available(), 20);
        assert_eq!((0..100).filter(|_| b.withdraw()).count(), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn ratio_is_never_rounded_up() {
        for (ratio, requests, allowed) in [(0.1, 1000, 100), (0.15, 1000, 150), (0.29, 100, 29)] {
            let b = budget(ratio, 0);
            (0..requests).for_each(|_| b.deposit());
            assert_eq!(
                (0..10_000).filter(|_| b.withdraw()).count(),
                allowed,
                "ratio {ratio}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire_after_the_window() {
        let b = budget(1.0, 0);
        (0..5).for_each(|_| b.deposit());
        assert_eq!(b.available(), 5);
        tokio::time::advance(Duration::from_millis(9_500)).await;
        assert_eq!(b.available(), 5, "still inside the window");
        tokio::time::advance(Duration::from_millis(1_000)).await;
        assert_eq!(b.available(), 0, "the window has passed");
    }

    #[tokio::test(start_paused = true)]
    async fn withdrawals_expire_too_so_the_reserve_comes_back() {
        let b = budget(0.0, 1);
        assert_eq!((0..100).filter(|_| b.withdraw()).count(), 10);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(b.available(), 10);
    }

    #[test]
    fn invalid_settings_are_typed_errors() {
        for ratio in [-0.1, f64::NAN, f64::INFINITY, 1000.5] {
            let config = BudgetConfig {
                ratio,
                ..BudgetConfig::default()
            };
            assert!(matches!(
                RetryBudget::new(config),
                Err(ConfigError::InvalidRatio(_))
            ));
        }
        for window in [
            Duration::ZERO,
            Duration::from_millis(999),
            Duration::from_secs(61),
        ] {
            let config = BudgetConfig {
                window,
                ..BudgetConfig::default()
            };
            assert_eq!(
                RetryBudget::new(config).map(|_| ()),
                Err(ConfigError::InvalidBudgetWindow(window))
            );
        }
    }
}
