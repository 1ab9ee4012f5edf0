//! How long a call waits for the deployment while no server can serve it: through an election
//! up to `election_wait`, through an outage only up to `outage_grace` after it began.

use std::time::Duration;

use keel_core::Error;
use tokio::time::Instant;

use crate::{ConnectionState, state::StateMachine};

/// The driver checks a server at most this often, even when asked to at once
/// (`minHeartbeatFrequencyMS`, SDAM specification): sooner than that nothing new is known.
pub(crate) const MIN_HEARTBEAT: Duration = Duration::from_millis(500);

/// The two limits of a wait, from [`ManagedSettings`](crate::ManagedSettings).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaitLimits {
    /// Longest wait for a primary while a member answers (an election).
    pub(crate) election_wait: Duration,
    /// How long after an outage began calls may still wait for it to end.
    pub(crate) outage_grace: Duration,
}

/// Waits until the state can serve a call, the call's deadline, or the limit of the current
/// situation, re-judged at every state change:
///
/// * `Reconnecting` (a member answers, no primary): until `election_wait` after the call began
///   or its deadline, whichever is sooner; then [`Error::unreachable`] (class
///   `ServerSelection`, nothing sent).
/// * `Unreachable` (every member's last check failed): until `outage_grace` after the outage
///   began, so calls already waiting are released then too, and a call arriving later fails at
///   once; then [`Error::no_member_reachable`] (class `Unavailable`, with `retry_after`, never
///   retried). A deadline that comes first ends the wait as in the election case.
/// * `Closed`: [`Error::shutting_down`].
pub(crate) async fn until_serving(
    machine: &StateMachine,
    limits: WaitLimits,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut own_end = started + limits.election_wait;
    if let Some(deadline) = deadline {
        own_end = own_end.min(deadline);
    }
    let mut receiver = machine.subscribe();
    loop {
        let state = *receiver.borrow_and_update();
        let now = Instant::now();
        let outage_end = match state {
            ConnectionState::Closed => return Err(Error::shutting_down()),
            state if state.can_serve() => return Ok(()),
            ConnectionState::Unreachable => machine
                .unreachable_since()
                .map(|since| since + limits.outage_grace),
            _ => None,
        };
        let end = match outage_end {
            Some(outage_end) => {
                if now >= outage_end && outage_end <= own_end {
                    return Err(Error::no_member_reachable(
                        now - started,
                        limits.outage_grace.max(MIN_HEARTBEAT),
                    ));
                }
                outage_end.min(own_end)
            }
            None => own_end,
        };
        if now >= end {
            return Err(Error::unreachable(now - started));
        }
        // A timeout re-runs the loop, which then fails with the right error; a change
        // re-judges the new state. A closed channel means the client is gone.
        if let Ok(Err(_)) = tokio::time::timeout_at(end, receiver.changed()).await {
            return Err(Error::shutting_down());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use keel_core::{ErrorClass, ErrorKind, OperationKind};

    use super::*;
    use crate::state::Signal;

    const LIMITS: WaitLimits = WaitLimits {
        election_wait: Duration::from_secs(12),
        outage_grace: Duration::from_secs(1),
    };

    fn connected() -> Arc<StateMachine> {
        let machine = Arc::new(StateMachine::new());
        machine.apply(Signal::Validated);
        machine
    }

    /// A call waiting in its own task, already started (and waiting) when this returns.
    async fn spawn_wait(
        machine: &Arc<StateMachine>,
        deadline: Option<Instant>,
    ) -> tokio::task::JoinHandle<(Result<(), Error>, Duration)> {
        let machine = Arc::clone(machine);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let outcome = until_serving(&machine, LIMITS, deadline).await;
            (outcome, started.elapsed())
        });
        tokio::task::yield_now().await;
        task
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_during_an_outage_fails_fast_after_the_grace() {
        let machine = connected();
        machine.apply(Signal::NoMemberReachable);
        let (outcome, waited) = spawn_wait(&machine, None).await.await.unwrap();
        let err = outcome.unwrap_err();
        assert_eq!(waited, LIMITS.outage_grace);
        assert_eq!(
            (err.kind(), err.class()),
            (ErrorKind::Unreachable, ErrorClass::Unavailable)
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
        assert!(
            !err.is_retryable(OperationKind::Read),
            "a fast-fail is never retried"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn later_calls_of_the_same_outage_fail_at_once() {
        let machine = connected();
        machine.apply(Signal::NoMemberReachable);
        tokio::time::advance(Duration::from_secs(5)).await;
        let (outcome, waited) = spawn_wait(&machine, None).await.await.unwrap();
        assert_eq!(outcome.unwrap_err().class(), ErrorClass::Unavailable);
        assert_eq!(waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn queued_calls_are_released_when_the_election_turns_into_an_outage() {
        let machine = connected();
        machine.apply(Signal::TopologyUnavailable);
        let queued = spawn_wait(&machine, None).await;
        tokio::time::advance(Duration::from_secs(3)).await;
        machine.apply(Signal::NoMemberReachable);
        let (outcome, waited) = queued.await.unwrap();
        assert_eq!(outcome.unwrap_err().class(), ErrorClass::Unavailable);
        assert_eq!(waited, Duration::from_secs(3) + LIMITS.outage_grace);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_back_within_the_grace_serves_the_waiting_call() {
        let machine = connected();
        machine.apply(Signal::NoMemberReachable);
        let waiting = spawn_wait(&machine, None).await;
        tokio::time::advance(Duration::from_millis(600)).await;
        machine.apply(Signal::TopologyWritable);
        let (outcome, waited) = waiting.await.unwrap();
        outcome.unwrap();
        assert_eq!(waited, Duration::from_millis(600));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_wait_through_an_election_and_go_on_with_the_new_primary() {
        let machine = connected();
        machine.apply(Signal::TopologyUnavailable);
        let waiting = spawn_wait(&machine, None).await;
        // mongod's election timeout is 10 s: well past the outage grace.
        tokio::time::advance(Duration::from_secs(10)).await;
        machine.apply(Signal::TopologyWritable);
        let (outcome, waited) = waiting.await.unwrap();
        outcome.unwrap();
        assert_eq!(waited, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_election_wait_ends_at_the_limit_or_the_deadline_whichever_is_sooner() {
        let machine = connected();
        machine.apply(Signal::TopologyUnavailable);
        let (outcome, waited) = spawn_wait(&machine, None).await.await.unwrap();
        let err = outcome.unwrap_err();
        assert_eq!(waited, LIMITS.election_wait);
        assert_eq!(err.class(), ErrorClass::ServerSelection, "{err}");

        let deadline = Instant::now() + Duration::from_secs(3);
        let (outcome, waited) = spawn_wait(&machine, Some(deadline)).await.await.unwrap();
        assert_eq!(waited, Duration::from_secs(3));
        assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Unreachable);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_ending_in_an_election_keeps_the_call_waiting() {
        let machine = connected();
        machine.apply(Signal::NoMemberReachable);
        let waiting = spawn_wait(&machine, None).await;
        tokio::time::advance(Duration::from_millis(500)).await;
        // The members come back as secondaries: an election follows.
        machine.apply(Signal::TopologyUnavailable);
        tokio::time::advance(Duration::from_secs(4)).await;
        machine.apply(Signal::TopologyWritable);
        let (outcome, waited) = waiting.await.unwrap();
        outcome.unwrap();
        assert_eq!(waited, Duration::from_millis(4500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_before_the_grace_ends_the_wait_at_the_deadline() {
        let machine = connected();
        machine.apply(Signal::NoMemberReachable);
        let deadline = Instant::now() + Duration::from_millis(200);
        let (outcome, waited) = spawn_wait(&machine, Some(deadline)).await.await.unwrap();
        assert_eq!(waited, Duration::from_millis(200));
        assert_eq!(outcome.unwrap_err().class(), ErrorClass::ServerSelection);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_releases_every_waiting_call() {
        let machine = connected();
        machine.apply(Signal::TopologyUnavailable);
        let waiting = spawn_wait(&machine, None).await;
        machine.apply(Signal::Closed);
        let (outcome, _) = waiting.await.unwrap();
        assert_eq!(outcome.unwrap_err().kind(), ErrorKind::ShuttingDown);
    }
}
