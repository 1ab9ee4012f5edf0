//! Pacing of the consumer's own resumes: keel-retry's backoff between consecutive attempts, and
//! keel-retry's budget over a sliding window, so a stream that opens and fails at once, again
//! and again, cannot turn into a resume storm (the backoff alone restarts at its base after
//! every success).
//!
//! Over any budget window, resumes ≤ `ratio × successful reads + min_per_sec × window`
//! (`RetryBudget`'s guarantee); a successful read is an open or a `getMore` round.

use std::{sync::Arc, time::Duration};

use keel_retry::{Backoff, BudgetConfig, RetryBudget};

/// The consumer's default resume budget: at most 10 resumes in any 10 s without successful
/// reads (one per second), plus one per five successful reads.
pub(crate) const DEFAULT_BUDGET: BudgetConfig = BudgetConfig {
    ratio: 0.2,
    min_per_sec: 1,
    window: Duration::from_secs(10),
};

/// The budget one consumer's resumes share (across its streams and snapshot reads).
#[derive(Clone, Debug)]
pub(crate) struct ResumeBudget {
    budget: Arc<RetryBudget>,
    /// How often an exhausted budget is asked again (a tenth of its window: one slot).
    poll: Duration,
}

impl ResumeBudget {
    pub(crate) fn new(config: BudgetConfig) -> Result<Self, keel_retry::ConfigError> {
        Ok(Self {
            budget: Arc::new(RetryBudget::new(config)?),
            poll: config.window / 10,
        })
    }

    /// A successful read: earns `ratio` of a resume.
    pub(crate) fn succeeded(&self) {
        self.budget.deposit();
    }

    /// Waits until the budget allows one resume, and takes it.
    pub(crate) async fn take(&self) {
        while !self.budget.withdraw() {
            tokio::time::sleep(self.poll).await;
        }
    }
}

/// Consecutive resume attempts of one stream: the backoff's state.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    attempt: u32,
    previous: Duration,
}

impl Attempts {
    /// The stream delivered something: the next failure starts the backoff again.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }

    /// The attempts so far, before this one.
    pub(crate) fn count(&self) -> u32 {
        self.attempt
    }

    /// Waits the backoff of the next attempt, then for the budget.
    pub(crate) async fn wait(&mut self, backoff: &Backoff, budget: &ResumeBudget) {
        let delay = backoff.delay(self.attempt, self.previous, rand::random::<f64>());
        self.previous = delay;
        self.attempt = self.attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
        budget.take().await;
    }
}

/// A `getMore` without `maxTimeMS` on an awaitData cursor waits this long on mongod before it
/// returns an empty batch (keel-testkit's change-stream `getMore` mirrors it).
const SERVER_AWAIT: Duration = Duration::from_secs(1);

/// Spots the driver's own resumes, which never reach the consumer as errors: on a resumable
/// `getMore` error the driver's `ChangeStream` re-runs `aggregate` at once and hands back the
/// new cursor's first batch (mongodb 3.9.1 `change_stream/common.rs`, `next_if_any`), and it
/// does so again on every call for as long as `getMore` keeps failing while `aggregate` works —
/// a resume storm the consumer would never see. An idle stream's empty batch takes the
/// server's await time (`max_await_time`, else [`SERVER_AWAIT`]); a re-opened cursor's empty
/// first batch comes at once. So two empty batches in a row that each came in under half the
/// await time are paced as a resume (backoff and budget); any event or a full wait ends that.
/// With `max_await_time` zero every empty batch is quick by design and this is off.
#[derive(Debug)]
pub(crate) struct QuickEmpties {
    quick: Duration,
    in_a_row: u32,
}

/// What an empty batch was.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Empty {
    /// The server waited for events: a successful read.
    Awaited,
    /// Came at once: a cursor's first batch (the consumer's own open or the driver's resume).
    Quick,
    /// The second quick one in a row: the driver is resuming by itself; pace it.
    DriverResume,
}

impl QuickEmpties {
    pub(crate) fn new(max_await_time: Option<Duration>) -> Self {
        Self {
            quick: max_await_time.unwrap_or(SERVER_AWAIT) / 2,
            in_a_row: 0,
        }
    }

    /// A freshly opened stream, or one that returned an event.
    pub(crate) fn reset(&mut self) {
        self.in_a_row = 0;
    }

    /// An empty batch that took `took`.
    pub(crate) fn empty(&mut self, took: Duration) -> Empty {
        if took >= self.quick {
            self.in_a_row = 0;
            return Empty::Awaited;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        if self.in_a_row >= 2 {
            Empty::DriverResume
        } else {
            Empty::Quick
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_retry::BackoffConfig;
    use tokio::time::Instant;

    fn backoff() -> Backoff {
        Backoff::new(BackoffConfig {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
            ..BackoffConfig::default()
        })
        .unwrap()
    }

    /// An outage where every re-open succeeds and the next read fails at once (the case the
    /// backoff alone does not pace: each success restarts it at 100 ms): over 120 s the budget
    /// lets through at most its reserve per window plus its share of the successes.
    #[tokio::test(start_paused = true)]
    async fn a_flapping_stream_resumes_at_most_the_budget() {
        let budget = ResumeBudget::new(DEFAULT_BUDGET).unwrap();
        let backoff = backoff();
        let mut attempts = Attempts::default();
        let started = Instant::now();
        let mut resumes = 0_u32;
        while started.elapsed() < Duration::from_secs(120) {
            attempts.wait(&backoff, &budget).await;
            resumes += 1;
            // The re-open succeeds (a successful read), the stream fails right after.
            budget.succeeded();
            attempts.reset();
        }
        // Per 10 s window: 10 from the reserve + 0.2 per resume that succeeded, so at most
        // 12.5; twelve windows, plus the first window's full reserve.
        assert!(resumes <= 12 * 13 + 10, "{resumes} resumes in 120 s");
        // Without the budget the backoff would allow one every ~50 ms on average (2 400).
        assert!(
            resumes >= 100,
            "the budget still lets resumes through: {resumes}"
        );
    }

    #[test]
    fn quick_empty_batches_in_a_row_are_the_drivers_resumes() {
        let mut empties = QuickEmpties::new(Some(Duration::from_millis(100)));
        let at_once = Duration::from_millis(2);
        // A fresh cursor's first batch, then the server's full wait: nothing to pace.
        assert_eq!(empties.empty(at_once), Empty::Quick);
        assert_eq!(empties.empty(Duration::from_millis(100)), Empty::Awaited);
        assert_eq!(empties.empty(at_once), Empty::Quick);
        // The driver re-opened again and again.
        assert_eq!(empties.empty(at_once), Empty::DriverResume);
        assert_eq!(empties.empty(at_once), Empty::DriverResume);
        empties.reset();
        assert_eq!(empties.empty(at_once), Empty::Quick);
        // Without `max_await_time` the server waits 1 s.
        let mut empties = QuickEmpties::new(None);
        assert_eq!(empties.empty(Duration::from_millis(400)), Empty::Quick);
        assert_eq!(empties.empty(Duration::from_millis(600)), Empty::Awaited);
        // A zero await: every empty batch is quick by design, nothing is paced.
        let mut empties = QuickEmpties::new(Some(Duration::ZERO));
        for _ in 0..3 {
            assert_eq!(empties.empty(Duration::ZERO), Empty::Awaited);
        }
    }

    /// A long outage where even the open fails: the backoff grows to its cap and the budget is
    /// not what limits.
    #[tokio::test(start_paused = true)]
    async fn a_long_outage_is_paced_by_the_backoff() {
        let budget = ResumeBudget::new(DEFAULT_BUDGET).unwrap();
        let backoff = backoff();
        let mut attempts = Attempts::default();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(600) {
            attempts.wait(&backoff, &budget).await;
        }
        // Full jitter up to a 10 s cap: about one resume per 5 s once capped, far below the
        // budget's one per second.
        assert!(attempts.count() <= 200, "{} resumes", attempts.count());
        assert!(attempts.count() >= 60, "{} resumes", attempts.count());
    }
}
