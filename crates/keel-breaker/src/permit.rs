//! The permission to make one call, and the outcome reported when it finishes.

use std::sync::Arc;

use tokio::time::Instant;

use crate::breaker::Shared;

/// What a finished call says about the protected dependency.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, CallOutcome};
///
/// let breaker = Breaker::new("cluster0", BreakerConfig::default())?;
/// breaker.try_acquire().expect("closed").record(CallOutcome::Failure);
/// breaker.try_acquire().expect("closed").record(CallOutcome::Ignored); // the caller's mistake
/// assert_eq!((breaker.window().calls, breaker.window().failures), (1, 1));
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// The call succeeded (it may still count as slow).
    Success,
    /// The call failed in a way that counts against the dependency.
    Failure,
    /// The call failed in a way that says nothing about the dependency (the caller's own
    /// mistake, such as a duplicate key): it is neither a success nor a failure.
    Ignored,
}

/// Permission from a [`Breaker`](crate::Breaker) to make one call.
///
/// Report how the call went with [`record`](Permit::record). Dropping a permit without
/// recording (a cancelled call) records nothing, and gives a half-open probe slot back.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, CallOutcome};
///
/// let breaker = Breaker::new("inventory", BreakerConfig::default()).unwrap();
/// let permit = breaker.try_acquire().expect("a new breaker is closed");
/// permit.record(CallOutcome::Success);
/// assert_eq!(breaker.window().calls, 1);
/// ```
#[derive(Debug)]
#[must_use = "a permit records nothing unless `record` is called"]
pub struct Permit {
    shared: Arc<Shared>,
    generation: u64,
    probe: bool,
    start: Option<Instant>,
    settled: bool,
}

impl Permit {
    pub(crate) fn new(
        shared: Arc<Shared>,
        generation: u64,
        probe: bool,
        start_clock: bool,
    ) -> Self {
        let mut permit = Self {
            shared,
            generation,
            probe,
            start: None,
            settled: false,
        };
        if start_clock {
            permit.start_clock();
        }
        permit
    }

    /// Whether this permit is one of the half-open state's probes.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Starts the slow-call clock now (a service reserves its permit in `poll_ready`, but the
    /// call starts later, in `call`). Reads the clock only when a slow-call rule needs it.
    pub(crate) fn start_clock(&mut self) {
        if self.shared.needs_start() {
            self.start = Some(Instant::now());
        }
    }

    /// Reports how the call went.
    pub fn record(mut self, outcome: CallOutcome) {
        self.settled = true;
        self.shared
            .record(self.generation, self.probe, self.start, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.shared.release_probe(self.generation);
        }
    }
}
