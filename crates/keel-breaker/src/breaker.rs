//! The shared breaker: lock-free admission and recording, and the (locked, rare) state transitions.

use std::{
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

use crate::{
    BreakerConfig, BreakerState, BreakerStats, CallOutcome, CircuitBreakerLayer, CircuitOpen,
    ConfigError, Permit, WindowSnapshot, metrics::Metrics, policy::AnyError, state::StateWord,
    stats::Counters, window::Window,
};

/// A circuit breaker, shared by every service (and clone) that should trip together.
///
/// `Breaker` is a cheap handle (`Arc` inside): give clones of one breaker to the services of all
/// collections of one cluster so that one outage opens one circuit. Use it as a tower layer with
/// [`layer`](Breaker::layer), or directly with [`try_acquire`](Breaker::try_acquire) and
/// [`Permit::record`].
///
/// Admission in the closed state is one atomic load, and recording a few atomic updates; only
/// state transitions take a lock. The open → half-open move happens when a call (or
/// [`state`](Breaker::state)) arrives after the open wait: there is no timer task.
///
/// Metric handles are registered with the `metrics` recorder installed when the breaker is
/// created, so install the recorder first.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, BreakerState, CallOutcome};
///
/// let config = BreakerConfig { consecutive_failures: Some(2), ..BreakerConfig::default() };
/// let breaker = Breaker::new("cluster0", config)?;
/// let mut changes = breaker.subscribe();
///
/// for _ in 0..2 {
///     breaker.try_acquire().expect("closed").record(CallOutcome::Failure);
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert_eq!(*changes.borrow_and_update(), BreakerState::Open);
///
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert!(rejected.retry_after() <= std::time::Duration::from_secs(5));
///
/// breaker.reset();
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Breaker {
    shared: Arc<Shared>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.shared.name)
            .field("state", &self.shared.word().state)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    name: Arc<str>,
    config: BreakerConfig,
    /// The state and its generation ([`StateWord`]).
    word: AtomicU64,
    /// When the open state ends, in nanoseconds since `origin`.
    open_until: AtomicU64,
    origin: Instant,
    window: Window,
    consecutive_failures: AtomicU32,
    /// Half-open probe slots taken and probe successes, each [`tagged`] with the generation of
    /// the half-open period they belong to.
    probes_admitted: AtomicU64,
    probe_successes: AtomicU64,
    /// Taken only to change state; holds how many trips in a row (for the growing wait).
    transitions: Mutex<u32>,
    changes: watch::Sender<BreakerState>,
    metrics: Metrics,
    counters: Counters,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Breaker {
    /// A closed breaker called `name` (the `name` label of its metrics).
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Result<Self, ConfigError> {
        let name = name.into();
        if name.is_empty() {
            return Err(ConfigError::EmptyName);
        }
        config.validate()?;
        let origin = Instant::now();
        let metrics = Metrics::register(&name);
        metrics.set_state(BreakerState::Closed);
        let shared = Shared {
            window: Window::new(config.window, origin),
            name,
            config,
            word: AtomicU64::new(
                StateWord {
                    state: BreakerState::Closed,
                    generation: 0,
                }
                .pack(),
            ),
            open_until: AtomicU64::new(0),
            origin,
            consecutive_failures: AtomicU32::new(0),
            probes_admitted: AtomicU64::new(0),
            probe_successes: AtomicU64::new(0),
            transitions: Mutex::new(0),
            changes: watch::Sender::new(BreakerState::Closed),
            metrics,
            counters: Counters::default(),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// The current state. An open circuit whose wait has passed moves to half-open here.
    pub fn state(&self) -> BreakerState {
        let word = self.shared.word();
        if word.state == BreakerState::Open && self.shared.open_remaining(Instant::now()).is_none()
        {
            return self.shared.open_to_half_open(word.generation).state;
        }
        word.state
    }

    /// A receiver that sees every state change.
    pub fn subscribe(&self) -> watch::Receiver<BreakerState> {
        self.shared.changes.subscribe()
    }

    /// Every call, rejection and state change since the breaker was made (not reset by a state
    /// change, unlike [`window`](Self::window)), without a metrics recorder.
    pub fn stats(&self) -> BreakerStats {
        self.shared.counters.snapshot()
    }

    /// The calls in the current window (counted in the closed state only).
    pub fn window(&self) -> WindowSnapshot {
        self.shared.window.snapshot(Some(Instant::now()))
    }

    /// Asks to make one call: a [`Permit`] to record its outcome with, or the reason to fail fast.
    ///
    /// The rejection's [`retry_after`](CircuitOpen::retry_after) is the time left of the open
    /// wait; for a forced-open circuit, the configured `open_wait`; when every half-open probe
    /// slot is taken, the slow-call threshold capped at `open_wait` (the probes' verdict is due
    /// by then).
    pub fn try_acquire(&self) -> Result<Permit, CircuitOpen> {
        self.acquire(true)
    }

    /// `start_clock: false` leaves the slow-call clock to [`Permit::start_clock`], for callers
    /// that reserve a permit before the call starts (a service's `poll_ready`).
    pub(crate) fn acquire(&self, start_clock: bool) -> Result<Permit, CircuitOpen> {
        let shared = &self.shared;
        let mut word = shared.word();
        // Usually one or two rounds: another follows an open → half-open move, or a state
        // that changed while this call was deciding.
        loop {
            match word.state {
                BreakerState::Closed | BreakerState::Disabled => {
                    return Ok(Permit::new(
                        shared.clone(),
                        word.generation,
                        false,
                        start_clock,
                    ));
                }
                BreakerState::HalfOpen => match self.try_probe(word.generation, start_clock) {
                    Some(admission) => return admission,
                    None => word = shared.word(),
                },
                BreakerState::ForcedOpen => {
                    // No scheduled end: hint at the configured wait.
                    return Err(shared.reject(shared.config.open_wait));
                }
                BreakerState::Open => match shared.open_remaining(Instant::now()) {
                    Some(remaining) => return Err(shared.reject(remaining)),
                    None => word = shared.open_to_half_open(word.generation),
                },
            }
        }
    }

    /// A probe slot of the half-open period `generation`; `None` when that period is over
    /// (the caller read the state just before it changed) and the state must be read again.
    fn try_probe(&self, generation: u64, start_clock: bool) -> Option<Result<Permit, CircuitOpen>> {
        let shared = &self.shared;
        let limit = shared.config.half_open_probes;
        let admitted =
            shared
                .probes_admitted
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |slots| {
                    let (period, taken) = untag(slots);
                    (period == tag_of(generation) && taken < limit).then_some(slots + 1)
                });
        match admitted {
            Ok(_) => Some(Ok(Permit::new(
                shared.clone(),
                generation,
                true,
                start_clock,
            ))),
            Err(slots) if untag(slots).0 != tag_of(generation) => None,
            // The probes in flight decide soon: hint at a short wait.
            Err(_) => Some(Err(shared.reject(shared.probe_hint()))),
        }
    }

    /// Opens the circuit until [`reset`](Breaker::reset), whatever the calls say.
    pub fn force_open(&self) {
        self.shared
            .transition(None, BreakerState::ForcedOpen, "forced open by operator");
    }

    /// Lets every call through and stops counting until [`reset`](Breaker::reset).
    pub fn disable(&self) {
        self.shared
            .transition(None, BreakerState::Disabled, "disabled by operator");
    }

    /// Closes the circuit and forgets all history (window, consecutive failures, trip count).
    pub fn reset(&self) {
        self.shared
            .transition(None, BreakerState::Closed, "reset by operator");
    }

    /// A tower layer counting every error as a failure and failing with
    /// [`BreakerError`](crate::BreakerError).
    pub fn layer(&self) -> CircuitBreakerLayer<AnyError> {
        CircuitBreakerLayer::new(self.clone(), AnyError)
    }

    /// A tower layer using `policy` to judge outcomes and build errors.
    pub fn layer_with<P>(&self, policy: P) -> CircuitBreakerLayer<P> {
        CircuitBreakerLayer::new(self.clone(), policy)
    }

    /// A tower layer for Keel's MongoDB services: only infrastructure errors count, and an open
    /// circuit fails with `keel_core::Error::circuit_open`.
    #[cfg(feature = "mongodb")]
    pub fn mongodb_layer(&self) -> CircuitBreakerLayer<crate::MongoPolicy> {
        CircuitBreakerLayer::new(self.clone(), crate::MongoPolicy)
    }
}

/// The low 32 bits of a generation: enough to tell a half-open period from the few before it.
fn tag_of(generation: u64) -> u32 {
    // Truncation is the point.
    generation as u32
}

/// A count belonging to the half-open period `generation`: its tag above, the count below.
fn tagged(generation: u64, count: u32) -> u64 {
    (u64::from(tag_of(generation)) << 32) | u64::from(count)
}

/// The (period tag, count) of a [`tagged`] value.
fn untag(value: u64) -> (u32, u32) {
    // Both halves fit a u32 by construction.
    ((value >> 32) as u32, value as u32)
}

impl Shared {
    fn word(&self) -> StateWord {
        StateWord::unpack(self.word.load(Ordering::Acquire))
    }

    fn nanos_since_origin(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// How much of the open wait is left, `None` once it has passed.
    fn open_remaining(&self, now: Instant) -> Option<Duration> {
        let until = self.open_until.load(Ordering::Acquire);
        let elapsed = self.nanos_since_origin(now);
        (elapsed < until).then(|| Duration::from_nanos(until - elapsed))
    }

    fn probe_hint(&self) -> Duration {
        self.config
            .slow_calls
            .map_or(self.config.open_wait, |slow| slow.threshold)
            .min(self.config.open_wait)
    }

    fn reject(&self, retry_after: Duration) -> CircuitOpen {
        self.metrics.rejected.increment(1);
        self.counters.rejected();
        CircuitOpen::new(retry_after)
    }

    /// Whether a permit must note when its call started.
    pub(crate) fn needs_start(&self) -> bool {
        self.config.slow_calls.is_some()
    }

    fn open_to_half_open(&self, generation: u64) -> StateWord {
        self.transition(
            Some((BreakerState::Open, generation)),
            BreakerState::HalfOpen,
            "open wait elapsed",
        )
    }

    pub(crate) fn record(
        &self,
        generation: u64,
        probe: bool,
        start: Option<Instant>,
        outcome: CallOutcome,
    ) {
        let now = (start.is_some() || self.window.needs_clock()).then(Instant::now);
        let slow = match (self.config.slow_calls, start, now) {
            (Some(rule), Some(start), Some(now)) => {
                now.saturating_duration_since(start) > rule.threshold
            }
            _ => false,
        };
        match outcome {
            CallOutcome::Success if slow => self.metrics.slow.increment(1),
            CallOutcome::Success => self.metrics.success.increment(1),
            CallOutcome::Failure => self.metrics.failure.increment(1),
            CallOutcome::Ignored => self.metrics.ignored.increment(1),
        }
        self.counters.call(outcome, slow);

        let word = self.word();
        if word.generation != generation {
            // The call began in an earlier state; its outcome says nothing about this one.
            return;
        }
        match word.state {
            BreakerState::Closed => self.record_closed(generation, now, outcome, slow),
            BreakerState::HalfOpen if probe => self.record_probe(generation, outcome, slow),
            _ => {}
        }
    }

    fn record_closed(
        &self,
        generation: u64,
        now: Option<Instant>,
        outcome: CallOutcome,
        slow: bool,
    ) {
        let failure = match outcome {
            CallOutcome::Ignored => return,
            CallOutcome::Failure => true,
            CallOutcome::Success => false,
        };
        self.window.record(now, failure, slow);

        let config = &self.config;
        let mut reason = None;
        if failure {
            let in_a_row = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
            if config
                .consecutive_failures
                .is_some_and(|limit| in_a_row >= limit)
            {
                reason = Some("consecutive failures");
            }
        } else if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if reason.is_none() {
            let snap = self.window.snapshot(now);
            if snap.calls >= u64::from(config.minimum_calls) {
                #[allow(clippy::cast_precision_loss)]
                let calls = snap.calls as f64;
                #[allow(clippy::cast_precision_loss)]
                if snap.failures as f64 * 100.0 >= config.failure_rate_percent * calls {
                    reason = Some("failure rate");
                } else if config
                    .slow_calls
                    .is_some_and(|rule| snap.slow as f64 * 100.0 >= rule.rate_percent * calls)
                {
                    reason = Some("slow-call rate");
                }
            }
        }
        if let Some(reason) = reason {
            self.transition(
                Some((BreakerState::Closed, generation)),
                BreakerState::Open,
                reason,
            );
        }
    }

    fn record_probe(&self, generation: u64, outcome: CallOutcome, slow: bool) {
        let expected = Some((BreakerState::HalfOpen, generation));
        match outcome {
            CallOutcome::Ignored => self.release_probe(generation),
            CallOutcome::Failure => {
                self.transition(expected, BreakerState::Open, "probe failed");
            }
            CallOutcome::Success if slow => {
                self.transition(expected, BreakerState::Open, "probe was slow");
            }
            CallOutcome::Success => {
                // Counted only in its own half-open period, even if that ended a moment ago.
                let counted = self.probe_successes.fetch_update(
                    Ordering::AcqRel,
                    Ordering::Acquire,
                    |successes| (untag(successes).0 == tag_of(generation)).then_some(successes + 1),
                );
                if let Ok(before) = counted
                    && untag(before).1 + 1 >= self.config.half_open_probes
                {
                    self.transition(expected, BreakerState::Closed, "probes succeeded");
                }
            }
        }
    }

    /// Gives back the probe slot of a call that ended without saying anything, if its
    /// half-open period is still the current one.
    pub(crate) fn release_probe(&self, generation: u64) {
        let _ = self
            .probes_admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |slots| {
                let (period, taken) = untag(slots);
                (period == tag_of(generation) && taken > 0).then(|| slots - 1)
            });
    }

    /// Moves to `to` if the breaker is still in `expected` (state, generation), or
    /// unconditionally for operator commands. Returns the state word in force afterwards.
    fn transition(
        &self,
        expected: Option<(BreakerState, u64)>,
        to: BreakerState,
        reason: &'static str,
    ) -> StateWord {
        // A panic while holding this lock cannot leave the counter inconsistent.
        let mut trips = self
            .transitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.word();
        match expected {
            Some((state, generation))
                if current.state != state || current.generation != generation =>
            {
                return current;
            }
            None if current.state == to && to != BreakerState::Closed => return current,
            _ => {}
        }
        let now = Instant::now();
        let next = StateWord {
            state: to,
            generation: current.generation.wrapping_add(1),
        };
        let mut open_for = None;
        match to {
            BreakerState::Open => {
                *trips = trips.saturating_add(1);
                let wait = self.config.open_wait_for(*trips);
                let until = self
                    .nanos_since_origin(now)
                    .saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
                self.open_until.store(until, Ordering::Release);
                open_for = Some(wait);
            }
            BreakerState::HalfOpen => {
                // Before the state is published, so every probe finds its period ready.
                let fresh = tagged(next.generation, 0);
                self.probes_admitted.store(fresh, Ordering::Release);
                self.probe_successes.store(fresh, Ordering::Release);
            }
            BreakerState::Closed => {
                *trips = 0;
                self.window.reset();
                self.consecutive_failures.store(0, Ordering::Release);
            }
            BreakerState::ForcedOpen | BreakerState::Disabled => {}
        }
        self.word.store(next.pack(), Ordering::Release);
        // Published under the lock so that observers see changes in the order they happened.
        self.metrics.set_state(to);
        self.counters.state_changed();
        self.changes.send_replace(to);
        drop(trips);

        let (name, from) = (&*self.name, current.state.as_str());
        if to.is_open() {
            tracing::warn!(
                breaker = name,
                from,
                to = to.as_str(),
                reason,
                ?open_for,
                "circuit opened"
            );
        } else {
            tracing::info!(
                breaker = name,
                from,
                to = to.as_str(),
                reason,
                "circuit state changed"
            );
        }
        next
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn tripping(half_open_probes: u32) -> Breaker {
        let config = BreakerConfig {
            consecutive_failures: Some(1),
            half_open_probes,
            ..BreakerConfig::default()
        };
        Breaker::new("t", config).unwrap()
    }

    /// Trips, waits, and returns the generation of the half-open period that follows.
    async fn half_open(breaker: &Breaker) -> u64 {
        // Closed: the failure trips; half-open: the failed probe re-opens.
        breaker.try_acquire().unwrap().record(CallOutcome::Failure);
        assert_eq!(breaker.state(), BreakerState::Open);
        let wait = breaker.try_acquire().unwrap_err().retry_after();
        tokio::time::advance(wait).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        breaker.shared.word().generation
    }

    // A thread that read the half-open state, then was descheduled past a failed probe, a new
    // trip and the next half-open period, must not take that period's probe slot: it would
    // never give it back, and with one probe the circuit would refuse every call forever.
    #[tokio::test(start_paused = true)]
    async fn a_probe_asked_for_in_an_ended_period_takes_no_slot() {
        let breaker = tripping(1);
        let stale = half_open(&breaker).await;
        let current = half_open(&breaker).await;
        assert_ne!(stale, current);

        assert!(
            breaker.try_probe(stale, true).is_none(),
            "must re-read the state"
        );
        let probe = breaker
            .try_acquire()
            .expect("the one probe slot is still free");
        assert!(probe.is_probe());
        probe.record(CallOutcome::Success);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    // Likewise a success recorded by a probe of an ended period (after it passed the
    // generation check) must not count towards the current period's probes.
    #[tokio::test(start_paused = true)]
    async fn a_probe_success_from_an_ended_period_does_not_count() {
        let breaker = tripping(2);
        let stale = half_open(&breaker).await;
        half_open(&breaker).await;

        breaker
            .shared
            .record_probe(stale, CallOutcome::Success, false);
        breaker.try_acquire().unwrap().record(CallOutcome::Success);
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen,
            "one real success of two"
        );
        breaker.try_acquire().unwrap().record(CallOutcome::Success);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    // And a stale probe giving its slot back must not free one of the current period.
    #[tokio::test(start_paused = true)]
    async fn a_probe_released_from_an_ended_period_frees_nothing() {
        let breaker = tripping(1);
        let stale = half_open(&breaker).await;
        half_open(&breaker).await;

        let probe = breaker.try_acquire().unwrap();
        breaker.shared.release_probe(stale);
        assert!(
            breaker.try_acquire().is_err(),
            "the only slot is still taken"
        );
        drop(probe);
        assert!(breaker.try_acquire().unwrap().is_probe());
    }

    #[test]
    fn tags_keep_period_and_count_apart() {
        let value = tagged(u64::from(u32::MAX) + 5, 7);
        assert_eq!(untag(value), (4, 7));
        assert_eq!(untag(value + 1), (4, 8));
    }
}
