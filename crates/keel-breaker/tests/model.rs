//! Property test: the breaker behaves like a simple sequential model of its state machine, with
//! count- and time-based windows (roll-over bucket by bucket) under paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::VecDeque, time::Duration};

use keel_breaker::{
    Breaker, BreakerConfig, BreakerState, CallOutcome, Permit, SlidingWindow, SlowCalls,
};
use proptest::prelude::*;

const SLOW_MS: u64 = 2_000;

#[derive(Clone, Debug)]
enum Op {
    /// Acquire, let `millis` pass, record.
    Call(CallOutcome, u64),
    /// Acquire and keep the permit.
    Start,
    /// Record a kept permit.
    Finish(usize, CallOutcome),
    /// Drop a kept permit without recording.
    Cancel(usize),
    Wait(u64),
    QueryState,
    ForceOpen,
    Disable,
    Reset,
}

fn outcome() -> impl Strategy<Value = CallOutcome> {
    prop_oneof![
        4 => Just(CallOutcome::Success),
        4 => Just(CallOutcome::Failure),
        1 => Just(CallOutcome::Ignored),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (outcome(), prop_oneof![Just(0_u64), Just(SLOW_MS), Just(SLOW_MS + 1)])
            .prop_map(|(o, ms)| Op::Call(o, ms)),
        2 => Just(Op::Start),
        2 => (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Finish(i, o)),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => prop_oneof![Just(1_u64), Just(100), Just(250), Just(999), Just(5_000), Just(12_000)]
            .prop_map(Op::Wait),
        2 => Just(Op::QueryState),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        1 => Just(Op::Reset),
    ]
}

/// A count window of 1..8 calls, or a time window of 1, 4 or 10 s in 1, 2, 4 or 10 buckets.
fn window() -> impl Strategy<Value = SlidingWindow> {
    prop_oneof![
        (1_u32..8).prop_map(SlidingWindow::count),
        (
            prop_oneof![Just(1_u64), Just(4), Just(10)],
            prop_oneof![Just(1_u32), Just(2), Just(4), Just(10)],
        )
            .prop_map(|(secs, buckets)| SlidingWindow::Time {
                length: Duration::from_secs(secs),
                buckets,
            }),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        window(),
        any::<prop::sample::Index>(),
        prop_oneof![Just(25.0), Just(50.0), Just(100.0)],
    )
        .prop_flat_map(|(window, min, rate)| {
            // A count window must be able to hold `minimum_calls`.
            let most = match window {
                SlidingWindow::Count { calls } => calls as usize,
                SlidingWindow::Time { .. } => 8,
            };
            (
                Just(window),
                Just(min.index(most) as u32 + 1),
                Just(rate),
                prop::option::of(prop_oneof![Just(50.0), Just(100.0)]),
                prop::option::of(1_u32..4),
                prop_oneof![Just(1.0), Just(2.0)],
                1_u32..4,
            )
        })
        .prop_map(
            |(window, minimum_calls, rate, slow, consecutive, mult, probes)| BreakerConfig {
                window,
                minimum_calls,
                failure_rate_percent: rate,
                slow_calls: slow.map(|rate_percent| SlowCalls {
                    threshold: Duration::from_millis(SLOW_MS),
                    rate_percent,
                }),
                consecutive_failures: consecutive,
                open_wait: Duration::from_secs(5),
                open_wait_multiplier: mult,
                max_open_wait: Duration::from_secs(20),
                half_open_probes: probes,
            },
        )
}

/// The reference: plain data, no atomics, obviously sequential.
struct Model {
    config: BreakerConfig,
    state: BreakerState,
    generation: u64,
    now: Duration,
    /// Calls counted in the closed state: (when recorded, failed, slow). A count window keeps
    /// the last N; a time window keeps all and counts those of the last buckets.
    window: VecDeque<(Duration, bool, bool)>,
    consecutive: u32,
    trips: u32,
    open_until: Duration,
    probes_admitted: u32,
    probe_successes: u32,
}

struct ModelPermit {
    generation: u64,
    probe: bool,
    start: Duration,
}

impl Model {
    fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: BreakerState::Closed,
            generation: 0,
            now: Duration::ZERO,
            window: VecDeque::new(),
            consecutive: 0,
            trips: 0,
            open_until: Duration::ZERO,
            probes_admitted: 0,
            probe_successes: 0,
        }
    }

    fn go(&mut self, to: BreakerState) {
        match to {
            BreakerState::Open => {
                self.trips += 1;
                let wait = self.config.open_wait.as_secs_f64()
                    * self.config.open_wait_multiplier.powi(self.trips as i32 - 1);
                self.open_until =
                    self.now + Duration::from_secs_f64(wait).min(self.config.max_open_wait);
            }
            BreakerState::HalfOpen => {
                self.probes_admitted = 0;
                self.probe_successes = 0;
            }
            BreakerState::Closed => {
                self.trips = 0;
                self.window.clear();
                self.consecutive = 0;
            }
            _ => {}
        }
        self.state = to;
        self.generation += 1;
    }

    fn state(&mut self) -> BreakerState {
        if self.state == BreakerState::Open && self.now >= self.open_until {
            self.go(BreakerState::HalfOpen);
        }
        self.state
    }

    fn acquire(&mut self) -> Result<ModelPermit, Duration> {
        let permit = |m: &Self, probe| ModelPermit {
            generation: m.generation,
            probe,
            start: m.now,
        };
        match self.state() {
            BreakerState::Closed | BreakerState::Disabled => Ok(permit(self, false)),
            BreakerState::ForcedOpen => Err(self.config.open_wait),
            BreakerState::Open => Err(self.open_until - self.now),
            BreakerState::HalfOpen => {
                if self.probes_admitted < self.config.half_open_probes {
                    self.probes_admitted += 1;
                    Ok(permit(self, true))
                } else {
                    // The hint: the slow-call threshold, else the open wait.
                    Err(self
                        .config
                        .slow_calls
                        .map_or(self.config.open_wait, |s| s.threshold)
                        .min(self.config.open_wait))
                }
            }
        }
    }

    fn record(&mut self, permit: &ModelPermit, outcome: CallOutcome) {
        if permit.generation != self.generation {
            return;
        }
        let slow = self.config.slow_calls.is_some()
            && self.now - permit.start > Duration::from_millis(SLOW_MS);
        match self.state {
            BreakerState::Closed => {
                let failure = match outcome {
                    CallOutcome::Ignored => return,
                    CallOutcome::Failure => true,
                    CallOutcome::Success => false,
                };
                if let SlidingWindow::Count { calls } = self.config.window
                    && self.window.len() == calls as usize
                {
                    self.window.pop_front();
                }
                self.window.push_back((self.now, failure, slow));
                self.consecutive = if failure { self.consecutive + 1 } else { 0 };
                let (calls, failures, slows) = self.counted();
                let enough = calls >= u64::from(self.config.minimum_calls);
                let (calls, failures, slows) = (calls as f64, failures as f64, slows as f64);
                let trip = (failure
                    && self
                        .config
                        .consecutive_failures
                        .is_some_and(|n| self.consecutive >= n))
                    || (enough && failures * 100.0 >= self.config.failure_rate_percent * calls)
                    || (enough
                        && self
                            .config
                            .slow_calls
                            .is_some_and(|s| slows * 100.0 >= s.rate_percent * calls));
                if trip {
                    self.go(BreakerState::Open);
                }
            }
            BreakerState::HalfOpen if permit.probe => match outcome {
                CallOutcome::Ignored => self.release(permit),
                CallOutcome::Failure => self.go(BreakerState::Open),
                CallOutcome::Success if slow => self.go(BreakerState::Open),
                CallOutcome::Success => {
                    self.probe_successes += 1;
                    if self.probe_successes >= self.config.half_open_probes {
                        self.go(BreakerState::Closed);
                    }
                }
            },
            _ => {}
        }
    }

    fn release(&mut self, permit: &ModelPermit) {
        if permit.probe
            && self.state == BreakerState::HalfOpen
            && permit.generation == self.generation
        {
            self.probes_admitted = self.probes_admitted.saturating_sub(1);
        }
    }

    fn command(&mut self, to: BreakerState) {
        if self.state != to || to == BreakerState::Closed {
            self.go(to);
        }
    }
}

impl Model {
    /// (calls, failures, slow calls) in the window now. A time window of `buckets` buckets
    /// counts the calls recorded in the current bucket and the `buckets - 1` before it, buckets
    /// being `length / buckets` long from the breaker's creation.
    fn counted(&self) -> (u64, u64, u64) {
        let in_window = |at: Duration| match self.config.window {
            SlidingWindow::Count { .. } => true,
            SlidingWindow::Time { length, buckets } => {
                let bucket = (length / buckets).as_nanos();
                let (then, now) = (at.as_nanos() / bucket, self.now.as_nanos() / bucket);
                then + u128::from(buckets) > now
            }
        };
        let counted: Vec<_> = self.window.iter().filter(|c| in_window(c.0)).collect();
        let count = |pick: fn(&(Duration, bool, bool)) -> bool| {
            counted.iter().filter(|c| pick(c)).count() as u64
        };
        (counted.len() as u64, count(|c| c.1), count(|c| c.2))
    }
}

fn check(config: BreakerConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let breaker = Breaker::new("model", config.clone()).unwrap();
        let mut model = Model::new(config);
        let mut held: Vec<(Permit, ModelPermit)> = Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Call(outcome, millis) => {
                    let real = breaker.try_acquire();
                    let expected = model.acquire();
                    match (real, expected) {
                        (Ok(permit), Ok(model_permit)) => {
                            prop_assert_eq!(permit.is_probe(), model_permit.probe, "step {}", step);
                            tokio::time::advance(Duration::from_millis(millis)).await;
                            model.now += Duration::from_millis(millis);
                            permit.record(outcome);
                            model.record(&model_permit, outcome);
                        }
                        (Err(open), Err(retry_after)) => {
                            prop_assert_eq!(open.retry_after(), retry_after, "step {}", step);
                        }
                        (real, expected) => prop_assert!(
                            false,
                            "step {}: admitted {} but the model says {}",
                            step,
                            real.is_ok(),
                            expected.is_ok()
                        ),
                    }
                }
                Op::Start => match (breaker.try_acquire(), model.acquire()) {
                    (Ok(permit), Ok(model_permit)) => held.push((permit, model_permit)),
                    (Err(open), Err(retry_after)) => {
                        prop_assert_eq!(open.retry_after(), retry_after, "step {}", step);
                    }
                    (real, expected) => {
                        prop_assert!(
                            false,
                            "step {}: {} vs {}",
                            step,
                            real.is_ok(),
                            expected.is_ok()
                        );
                    }
                },
                Op::Finish(index, outcome) if !held.is_empty() => {
                    let (permit, model_permit) = held.swap_remove(index % held.len());
                    permit.record(outcome);
                    model.record(&model_permit, outcome);
                }
                Op::Cancel(index) if !held.is_empty() => {
                    let (permit, model_permit) = held.swap_remove(index % held.len());
                    drop(permit);
                    model.release(&model_permit);
                }
                Op::Finish(..) | Op::Cancel(_) => {}
                Op::Wait(millis) => {
                    tokio::time::advance(Duration::from_millis(millis)).await;
                    model.now += Duration::from_millis(millis);
                }
                Op::QueryState => prop_assert_eq!(breaker.state(), model.state(), "step {}", step),
                Op::ForceOpen => {
                    breaker.force_open();
                    model.command(BreakerState::ForcedOpen);
                }
                Op::Disable => {
                    breaker.disable();
                    model.command(BreakerState::Disabled);
                }
                Op::Reset => {
                    breaker.reset();
                    model.command(BreakerState::Closed);
                }
            }
            let window = breaker.window();
            prop_assert_eq!(
                (window.calls, window.failures, window.slow),
                model.counted(),
                "step {}",
                step
            );
        }
        prop_assert_eq!(breaker.state(), model.state());
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_model(config in config(), ops in prop::collection::vec(op(), 1..120)) {
        check(config, ops)?;
    }
}
