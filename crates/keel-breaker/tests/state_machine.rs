//! The breaker's state machine under paused time: every trip rule, the open wait, probes and
//! operator commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_breaker::{Breaker, BreakerConfig, BreakerState, CallOutcome, SlidingWindow, SlowCalls};
use tokio::time::advance;

/// Only the rule under test is active.
fn rates_only(window: SlidingWindow, minimum_calls: u32) -> BreakerConfig {
    BreakerConfig {
        window,
        minimum_calls,
        slow_calls: None,
        consecutive_failures: None,
        ..BreakerConfig::default()
    }
}

fn record(breaker: &Breaker, outcome: CallOutcome) {
    breaker
        .try_acquire()
        .expect("the circuit should admit this call")
        .record(outcome);
}

fn record_n(breaker: &Breaker, n: usize, outcome: CallOutcome) {
    for _ in 0..n {
        record(breaker, outcome);
    }
}

/// Trips a breaker with a `consecutive_failures` rule of 1.
fn trip(breaker: &Breaker) {
    record(breaker, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
}

fn one_failure_trips() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: Some(1),
        ..BreakerConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn failure_rate_waits_for_minimum_calls() {
    let breaker = Breaker::new("t", rates_only(SlidingWindow::count(10), 4)).unwrap();
    record_n(&breaker, 3, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Closed, "3 calls < minimum 4");
    // A success reaching the minimum with 3/4 = 75 % failures trips.
    record(&breaker, CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_below_threshold_stays_closed_and_at_threshold_trips() {
    let breaker = Breaker::new("t", rates_only(SlidingWindow::count(10), 10)).unwrap();
    record_n(&breaker, 6, CallOutcome::Success);
    record_n(&breaker, 4, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Closed, "40 % < 50 %");
    // Evicts a success: 5 failures of 10 reach 50 %.
    record(&breaker, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn count_window_forgets_the_oldest_calls() {
    let breaker = Breaker::new("t", rates_only(SlidingWindow::count(4), 4)).unwrap();
    record(&breaker, CallOutcome::Failure);
    record_n(&breaker, 3, CallOutcome::Success);
    // The failure rolls out of the window.
    record(&breaker, CallOutcome::Success);
    assert_eq!(breaker.window().failures, 0);
    assert_eq!(breaker.window().calls, 4);
    record(&breaker, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Closed, "1/4 = 25 %");
}

#[tokio::test(start_paused = true)]
async fn time_window_rolls_over() {
    // 10 s window in 10 buckets; minimum 4 calls.
    let breaker = Breaker::new(
        "t",
        rates_only(SlidingWindow::time(Duration::from_secs(10)), 4),
    )
    .unwrap();
    record_n(&breaker, 2, CallOutcome::Failure);
    advance(Duration::from_secs(10)).await;
    // The two failures have rolled out: 2 new failures are only 2 calls, below the minimum.
    record_n(&breaker, 2, CallOutcome::Failure);
    assert_eq!(breaker.window().calls, 2);
    assert_eq!(breaker.state(), BreakerState::Closed);
    advance(Duration::from_millis(9_999)).await;
    // Still inside the window: 4 calls, 3 failures.
    record(&breaker, CallOutcome::Success);
    record(&breaker, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn time_window_old_successes_expire() {
    let breaker = Breaker::new(
        "t",
        rates_only(SlidingWindow::time(Duration::from_secs(10)), 2),
    )
    .unwrap();
    record_n(&breaker, 10, CallOutcome::Success);
    record(&breaker, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Closed, "1/11 failed");
    advance(Duration::from_secs(10)).await;
    record(&breaker, CallOutcome::Failure);
    record(&breaker, CallOutcome::Success);
    assert_eq!(
        breaker.state(),
        BreakerState::Open,
        "the successes expired: 1/2 failed"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_calls_trip_on_slow_rate() {
    let config = BreakerConfig {
        slow_calls: Some(SlowCalls {
            threshold: Duration::from_secs(2),
            rate_percent: 50.0,
        }),
        ..rates_only(SlidingWindow::count(4), 4)
    };
    let breaker = Breaker::new("t", config).unwrap();
    // Exactly the threshold is not slower than it.
    let permit = breaker.try_acquire().unwrap();
    advance(Duration::from_secs(2)).await;
    permit.record(CallOutcome::Success);
    assert_eq!(breaker.window().slow, 0);

    for _ in 0..2 {
        let permit = breaker.try_acquire().unwrap();
        advance(Duration::from_millis(2_001)).await;
        permit.record(CallOutcome::Success);
    }
    assert_eq!(breaker.window().slow, 2);
    assert_eq!(breaker.state(), BreakerState::Closed, "3 calls < minimum");
    record(&breaker, CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Open, "2/4 slow = 50 %");
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_trip_before_minimum_calls() {
    let config = BreakerConfig {
        consecutive_failures: Some(3),
        ..BreakerConfig::default()
    };
    let breaker = Breaker::new("t", config).unwrap();
    record_n(&breaker, 2, CallOutcome::Failure);
    record(&breaker, CallOutcome::Success);
    record_n(&breaker, 2, CallOutcome::Failure);
    // An ignored outcome neither resets nor extends the run.
    record(&breaker, CallOutcome::Ignored);
    assert_eq!(breaker.state(), BreakerState::Closed);
    record(&breaker, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_do_not_count() {
    let breaker = Breaker::new("t", rates_only(SlidingWindow::count(10), 2)).unwrap();
    record_n(&breaker, 20, CallOutcome::Ignored);
    assert_eq!(breaker.window().calls, 0);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn open_rejects_until_the_wait_has_passed() {
    let breaker = Breaker::new("t", one_failure_trips()).unwrap();
    trip(&breaker);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Duration::from_secs(5)
    );
    advance(Duration::from_millis(4_999)).await;
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Duration::from_millis(1)
    );
    assert_eq!(breaker.state(), BreakerState::Open);
    advance(Duration::from_millis(1)).await;
    let probe = breaker.try_acquire().unwrap();
    assert!(probe.is_probe());
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_n_probes_and_closes_when_all_succeed() {
    let breaker = Breaker::new("t", one_failure_trips()).unwrap();
    trip(&breaker);
    advance(Duration::from_secs(5)).await;
    let probes: Vec<_> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(
        refused.retry_after(),
        Duration::from_secs(2),
        "slow-call threshold hint"
    );
    let mut probes = probes.into_iter();
    probes.next().unwrap().record(CallOutcome::Success);
    probes.next().unwrap().record(CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    probes.next().unwrap().record(CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.window().calls, 0, "closing starts a fresh window");
}

#[tokio::test(start_paused = true)]
async fn probe_failure_reopens_with_a_doubled_wait() {
    let breaker = Breaker::new("t", one_failure_trips()).unwrap();
    trip(&breaker);
    for expected in [10, 20, 40, 60, 60] {
        let waited = breaker.try_acquire().unwrap_err().retry_after();
        advance(waited).await;
        breaker.try_acquire().unwrap().record(CallOutcome::Failure);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(
            breaker.try_acquire().unwrap_err().retry_after(),
            Duration::from_secs(expected)
        );
    }
    // Recovery resets the growth.
    advance(Duration::from_secs(60)).await;
    record_n(&breaker, 3, CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
    trip(&breaker);
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_after(),
        Duration::from_secs(5)
    );
}

#[tokio::test(start_paused = true)]
async fn slow_probe_reopens() {
    let breaker = Breaker::new("t", one_failure_trips()).unwrap();
    trip(&breaker);
    advance(Duration::from_secs(5)).await;
    let probe = breaker.try_acquire().unwrap();
    advance(Duration::from_secs(3)).await;
    probe.record(CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn dropped_or_ignored_probes_free_their_slot() {
    let config = BreakerConfig {
        half_open_probes: 1,
        ..one_failure_trips()
    };
    let breaker = Breaker::new("t", config).unwrap();
    trip(&breaker);
    advance(Duration::from_secs(5)).await;
    drop(breaker.try_acquire().unwrap());
    breaker
        .try_acquire()
        .expect("a cancelled probe gives its slot back")
        .record(CallOutcome::Ignored);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    breaker
        .try_acquire()
        .expect("an ignored probe gives its slot back")
        .record(CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn calls_admitted_before_a_transition_do_not_count_after_it() {
    let config = BreakerConfig {
        consecutive_failures: Some(1),
        half_open_probes: 1,
        ..BreakerConfig::default()
    };
    let breaker = Breaker::new("t", config).unwrap();
    let late = breaker.try_acquire().unwrap();
    trip(&breaker);
    advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // A call from the closed era finishing now is not a probe.
    late.record(CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    record(&breaker, CallOutcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_until_reset() {
    let breaker = Breaker::new("t", BreakerConfig::default()).unwrap();
    breaker.force_open();
    assert_eq!(breaker.state(), BreakerState::ForcedOpen);
    advance(Duration::from_secs(3_600)).await;
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_after(), Duration::from_secs(5));
    breaker.reset();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert!(breaker.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn disabled_admits_everything_and_never_trips() {
    let breaker = Breaker::new("t", one_failure_trips()).unwrap();
    breaker.disable();
    record_n(&breaker, 100, CallOutcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Disabled);
    assert_eq!(breaker.window().calls, 0);
    breaker.reset();
    trip(&breaker);
}

#[tokio::test(start_paused = true)]
async fn reset_forgets_history() {
    let config = BreakerConfig {
        consecutive_failures: Some(2),
        ..BreakerConfig::default()
    };
    let breaker = Breaker::new("t", config).unwrap();
    record(&breaker, CallOutcome::Failure);
    breaker.reset();
    record(&breaker, CallOutcome::Failure);
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "the run restarted at reset"
    );
    assert_eq!(breaker.window().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn subscribers_see_every_change_in_order() {
    let breaker = Breaker::new("t", one_failure_trips()).unwrap();
    let mut changes = breaker.subscribe();
    assert_eq!(*changes.borrow_and_update(), BreakerState::Closed);
    trip(&breaker);
    changes.changed().await.unwrap();
    assert_eq!(*changes.borrow_and_update(), BreakerState::Open);
    advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    changes.changed().await.unwrap();
    assert_eq!(*changes.borrow_and_update(), BreakerState::HalfOpen);
    breaker.force_open();
    changes.changed().await.unwrap();
    assert_eq!(*changes.borrow_and_update(), BreakerState::ForcedOpen);
    // Forcing open twice is not a change.
    breaker.force_open();
    assert!(!changes.has_changed().unwrap());
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_circuit() {
    let breaker = Breaker::new("cluster0", one_failure_trips()).unwrap();
    let users = breaker.clone();
    let orders = breaker.clone();
    trip(&users);
    assert!(orders.try_acquire().is_err());
    assert_eq!(breaker.name(), "cluster0");
}

#[test]
fn concurrent_callers_never_hold_more_probes_than_allowed() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    const PROBES: u32 = 3;
    let config = BreakerConfig {
        half_open_probes: PROBES,
        ..one_failure_trips()
    };
    let breaker = Breaker::new("t", config).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            trip(&breaker);
            advance(Duration::from_secs(5)).await;
            assert_eq!(breaker.state(), BreakerState::HalfOpen);
        });

    // Half-open admission reads no clock, so plain threads can race for the slots.
    let holding = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let admitted = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let (breaker, holding, most, admitted) = (&breaker, &holding, &most, &admitted);
            scope.spawn(move || {
                for i in 0..20_000 {
                    let Ok(probe) = breaker.try_acquire() else {
                        continue;
                    };
                    assert!(probe.is_probe());
                    admitted.fetch_add(1, Ordering::Relaxed);
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    holding.fetch_sub(1, Ordering::SeqCst);
                    // Neither a cancelled nor an ignored probe decides anything.
                    if (i + thread) % 2 == 0 {
                        drop(probe);
                    } else {
                        probe.record(CallOutcome::Ignored);
                    }
                }
            });
        }
    });
    assert!(most.load(Ordering::SeqCst) <= PROBES as usize);
    assert!(admitted.load(Ordering::Relaxed) > 0);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // Every slot was given back.
    let probes: Vec<_> = (0..PROBES)
        .map(|_| breaker.try_acquire().unwrap())
        .collect();
    assert!(breaker.try_acquire().is_err());
    for probe in probes {
        probe.record(CallOutcome::Success);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}
