//! Property tests: delays within their strategy's bounds and the cap, the retry budget's
//! ratio, and the layer's deadline and backoff over random configurations.

use std::time::Duration;

use keel_retry::{
    Backoff, BackoffConfig, BudgetConfig, Jitter, RetryBudget, RetryConfig, RetryLayer,
    SeededJitter, StopReason,
};
use proptest::prelude::*;
use tokio::time::Instant;
use tower::Layer;

use crate::common::run_paused;
use crate::support::{HANG, Kind, Req, Script, TestPolicy, send_guarded};

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

/// One step against a retry budget.
#[derive(Clone, Debug)]
enum BudgetOp {
    Deposit,
    Withdraw,
    Advance(u64),
}

fn budget_op() -> impl Strategy<Value = BudgetOp> {
    prop_oneof![
        4 => Just(BudgetOp::Deposit),
        4 => Just(BudgetOp::Withdraw),
        2 => prop_oneof![0u64..50, 50u64..2_000, Just(5_000), Just(10_000)].prop_map(BudgetOp::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Checked against a plain log of what happened when, independent of the budget's slots:
    /// * safety: right after a retry is allowed at `t`, the retries of the last 0.9 × window
    ///   are at most `ratio` × the requests of the last window + the reserve;
    /// * liveness: a retry is refused only if the requests of the last 0.9 × window, times
    ///   `ratio`, plus the reserve, minus the retries of the last window, leave less than one.
    #[test]
    fn retries_stay_within_ratio_of_recent_requests_plus_reserve(
        ratio in prop::sample::select(vec![0.0, 0.1, 0.2, 0.5, 1.0, 2.5]),
        min_per_sec in 0u32..3,
        window_secs in prop::sample::select(vec![1u64, 10]),
        ops in prop::collection::vec(budget_op(), 1..300),
    ) {
        run_paused(async move {
            let window = Duration::from_secs(window_secs);
            let budget = RetryBudget::new(BudgetConfig { ratio, min_per_sec, window }).unwrap();
            let reserve = f64::from(min_per_sec) * window_secs as f64;
            // The budget counts thousandths of a retry and never rounds the ratio up.
            let earned = |requests: usize| (ratio * 1000.0 + 1e-6).floor() * requests as f64 / 1000.0;
            let start = Instant::now();
            let (mut deposits, mut retries) = (Vec::new(), Vec::new());
            let count_since = |log: &[Duration], after: Duration| log.iter().filter(|t| **t > after).count();
            for op in ops {
                let now = start.elapsed();
                match op {
                    BudgetOp::Deposit => {
                        budget.deposit();
                        deposits.push(now);
                    }
                    BudgetOp::Withdraw => {
                        let long = now.checked_sub(window);
                        let short = now.checked_sub(window.mul_f64(0.9));
                        let since = |log: &[Duration], ago: Option<Duration>| match ago {
                            Some(after) => count_since(log, after),
                            None => log.len(),
                        };
                        if budget.withdraw() {
                            retries.push(now);
                            let recent_retries = since(&retries, short) as f64;
                            let recent_requests = since(&deposits, long);
                            prop_assert!(
                                recent_retries <= earned(recent_requests) + reserve + 1e-9,
                                "{} retries > {} × {} requests + {}", recent_retries, ratio, recent_requests, reserve
                            );
                        } else {
                            let left = earned(since(&deposits, short)) + reserve
                                - since(&retries, long) as f64;
                            prop_assert!(left < 1.0 + 1e-9, "refused with {} retries left", left);
                        }
                    }
                    BudgetOp::Advance(ms) => tokio::time::advance(Duration::from_millis(ms)).await,
                }
            }
            Ok(())
        })?;
    }
}

prop_compose! {
    /// A layer configuration with millisecond timeouts (so the paused 1 ms timer wheel cuts
    /// exactly at the deadline) and any backoff.
    fn layer_config()(
        backoff in backoff(),
        max_attempts in 1u32..8,
        total in 1u64..5_000,
        attempt in prop::option::of(1u64..1_000),
    ) -> RetryConfig {
        RetryConfig {
            max_attempts,
            backoff: BackoffConfig {
                base: backoff.base(),
                cap: backoff.cap(),
                multiplier: 2.0,
                jitter: backoff.jitter(),
            },
            budget: None,
            total_timeout: Some(Duration::from_millis(total)),
            attempt_timeout: attempt.map(Duration::from_millis),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the configuration, jitter and attempt durations (some never finishing):
    /// * no retry starts at or after the deadline, or so late that `attempt_timeout` would
    ///   end after it; the whole call ends by the deadline (hung attempts are cut);
    /// * each wait lies within the backoff bounds (plus the 1 ms timer tick);
    /// * the error reports the attempts made and a reason that matches what happened.
    #[test]
    fn the_layer_keeps_to_the_deadline_and_the_backoff(
        config in layer_config(),
        seed in any::<u64>(),
        durations in prop::collection::vec(prop_oneof![4 => 0u64..300, 1 => Just(u64::MAX)], 1..8),
    ) {
        run_paused(async move {
            let total = config.total_timeout.unwrap();
            let backoff = Backoff::new(config.backoff).unwrap();
            let lengths: Vec<Duration> = durations
                .iter()
                .map(|&ms| if ms == u64::MAX { HANG } else { Duration::from_millis(ms) })
                .collect();
            let script = Script::timed(lengths.iter().map(|&d| (d, Err(Kind::Transient))));
            let policy = TestPolicy { cut_at_deadline: true, ..TestPolicy::default() };
            let mut service = RetryLayer::new(policy, config)
                .unwrap()
                .with_jitter_source(SeededJitter::new(seed))
                .layer(script.service());
            let start = Instant::now();
            let err = send_guarded(&mut service, Req::plain()).await.unwrap_err();
            let elapsed = start.elapsed();
            let starts = script.offsets(start);
            let length = |i: usize| lengths.get(i).copied().unwrap_or(Duration::ZERO);

            prop_assert!(elapsed <= total, "ended at {:?}, deadline {:?}", elapsed, total);
            prop_assert_eq!(err.attempts, Some(starts.len() as u32));
            prop_assert!(starts.len() as u32 <= config.max_attempts);
            let mut previous = Duration::ZERO;
            for (i, pair) in starts.windows(2).enumerate() {
                let started = pair[1];
                prop_assert!(started < total, "retry at {:?}", started);
                if let Some(attempt) = config.attempt_timeout {
                    prop_assert!(started + attempt <= total, "retry at {:?} cannot finish", started);
                }
                let waited = started - (pair[0] + length(i));
                let (low, high) = backoff.bounds(i as u32, previous);
                prop_assert!(
                    low <= waited && waited <= high + Duration::from_millis(1),
                    "retry {}: waited {:?}, bounds {:?}..={:?}", i, waited, low, high
                );
                // Decorrelated jitter grows from the delay drawn, which the 1 ms tick may have
                // lengthened a little; its upper bound only grows with `previous`, so the wait
                // observed is a safe stand-in.
                previous = waited;
            }
            let last = starts.len() - 1;
            match err.reason {
                Some(StopReason::MaxAttempts) => {
                    prop_assert_eq!(starts.len() as u32, config.max_attempts);
                    prop_assert_eq!(err.kind, Kind::Transient);
                }
                Some(StopReason::DeadlineExceeded) if err.kind == Kind::Cut => {
                    prop_assert_eq!(elapsed, total, "cut exactly at the deadline");
                    prop_assert!(
                        starts[last].saturating_add(length(last)) > total,
                        "the attempt could have finished"
                    );
                }
                Some(StopReason::DeadlineExceeded) => {
                    prop_assert_eq!(err.kind, Kind::Transient, "the last failure is returned");
                    prop_assert!(starts[last].saturating_add(length(last)) <= total);
                }
                other => prop_assert!(false, "unexpected reason {:?}", other),
            }
            Ok(())
        })?;
    }
}
