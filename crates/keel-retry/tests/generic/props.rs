//! Property tests: every delay lies within its strategy's bounds, which never exceed the cap.

use std::time::Duration;

use keel_retry::{Backoff, BackoffConfig, Jitter};
use proptest::prelude::*;

fn jitter() -> impl Strategy<Value = Jitter> {
    prop::sample::select(Jitter::ALL.to_vec())
}

prop_compose! {
    fn backoff()(base in 0u64..5_000_000, extra in 0u64..60_000_000, multiplier in 1.0f64..16.0,
                 jitter in jitter()) -> Backoff {
        Backoff::new(BackoffConfig {
            base: Duration::from_micros(base),
            cap: Duration::from_micros(base + extra),
            multiplier,
            jitter,
        }).unwrap()
    }
}

proptest! {
    #[test]
    fn delays_stay_within_bounds_and_cap(
        b in backoff(),
        retry in 0u32..200,
        previous in 0u64..200_000_000,
        unit in prop::num::f64::ANY,
    ) {
        let previous = Duration::from_micros(previous);
        let (low, high) = b.bounds(retry, previous);
        let delay = b.delay(retry, previous, unit);
        prop_assert!(low <= delay && delay <= high, "{low:?} <= {delay:?} <= {high:?}");
        prop_assert!(high <= b.cap());
        match b.jitter() {
            Jitter::None => prop_assert_eq!(low, high),
            Jitter::Full => prop_assert_eq!(low, Duration::ZERO),
            Jitter::Equal => prop_assert!(low <= high && high - low <= low + Duration::from_nanos(1)),
            Jitter::Decorrelated => {
                prop_assert_eq!(low, b.base());
                prop_assert!(high <= previous.max(b.base()) * 3);
            }
        }
    }

    #[test]
    fn the_ceiling_never_shrinks_and_stops_at_the_cap(b in backoff(), retry in 0u32..100) {
        prop_assert!(b.ceiling(retry) <= b.ceiling(retry + 1));
        prop_assert!(b.ceiling(retry) >= b.base().min(b.cap()));
        prop_assert!(b.ceiling(u32::MAX) <= b.cap());
    }

    #[test]
    fn the_low_end_of_unit_gives_the_low_bound(b in backoff(), retry in 0u32..64) {
        prop_assert_eq!(b.delay(retry, Duration::ZERO, 0.0), b.bounds(retry, Duration::ZERO).0);
    }
}
