//! How long a call waits for the deployment while no server can serve it: through an election
//! up to `election_wait`, through an outage only up to `outage_grace` after it began — whether
//! it waits in Keel's reconnect queue or is already with the driver.

use std::{sync::Weak, time::Duration};

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

/// The error of an attempt already with the driver, once the outage it is caught in has
/// lasted `grace`; `None` while there is no such outage (the state moved on).
pub(crate) fn in_flight_cut(machine: &StateMachine, grace: Duration) -> Option<Error> {
    if machine.current() != ConnectionState::Unreachable {
        return None;
    }
    let since = machine.unreachable_since()?;
    (Instant::now() >= since + grace)
        .then(|| Error::no_member_reachable_in_flight(grace, grace.max(MIN_HEARTBEAT)))
}

/// Ends the attempts already with the driver when an outage has lasted `grace`.
///
/// The driver keeps an attempt that lost its server in its own server selection for
/// `serverSelectionTimeoutMS` (30 s by default), and nothing but the attempt's own future can
/// stop it: so those futures wait on [`StateMachine::outage_cut`] beside the driver, and this
/// task (one per client) wakes them all once an outage has lasted the grace, as
/// [`until_serving`] releases queued calls. Ends when the state machine is gone or closed.
pub(crate) async fn cut_at_grace(machine: Weak<StateMachine>, grace: Duration) {
    let Some(strong) = machine.upgrade() else {
        return;
    };
    let mut receiver = strong.subscribe();
    drop(strong);
    loop {
        let state = *receiver.borrow_and_update();
        if state == ConnectionState::Closed {
            return;
        }
        let since = match machine.upgrade() {
            Some(strong) if state == ConnectionState::Unreachable => strong.unreachable_since(),
            Some(_) => None,
            None => return,
        };
        if let Some(since) = since {
            match tokio::time::timeout_at(since + grace, receiver.changed()).await {
                // The outage lasted the grace: wake the attempts, then wait for it to end.
                Err(_) => match machine.upgrade() {
                    Some(strong) => strong.cut_in_flight(),
                    None => return,
                },
                // The state moved on first: judge the new one.
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return,
            }
        }
        if receiver.changed().await.is_err() {
            return;
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

    fn down() -> Signal {
        Signal::NoMemberReachable {
            since: Instant::now(),
        }
    }

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
        machine.apply(down());
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
        machine.apply(down());
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
        machine.apply(down());
        let (outcome, waited) = queued.await.unwrap();
        assert_eq!(outcome.unwrap_err().class(), ErrorClass::Unavailable);
        assert_eq!(waited, Duration::from_secs(3) + LIMITS.outage_grace);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_back_within_the_grace_serves_the_waiting_call() {
        let machine = connected();
        machine.apply(down());
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
        machine.apply(down());
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
        machine.apply(down());
        let deadline = Instant::now() + Duration::from_millis(200);
        let (outcome, waited) = spawn_wait(&machine, Some(deadline)).await.await.unwrap();
        assert_eq!(waited, Duration::from_millis(200));
        assert_eq!(outcome.unwrap_err().class(), ErrorClass::ServerSelection);
    }

    /// An attempt with the driver, as `MongoFuture` waits beside it: the outage cut.
    fn in_flight(machine: &Arc<StateMachine>) -> tokio::task::JoinHandle<Duration> {
        let cut = machine.outage_cut();
        tokio::spawn(async move {
            let started = Instant::now();
            cut.await;
            started.elapsed()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_with_the_driver_are_cut_when_the_outage_has_lasted_the_grace() {
        let machine = connected();
        tokio::spawn(cut_at_grace(Arc::downgrade(&machine), LIMITS.outage_grace));
        let attempt = in_flight(&machine);
        tokio::task::yield_now().await;
        // The first failed check was 300 ms before the retry's failure made it an outage.
        let since = Instant::now();
        tokio::time::advance(Duration::from_millis(300)).await;
        machine.apply(Signal::NoMemberReachable { since });
        assert!(in_flight_cut(&machine, LIMITS.outage_grace).is_none());
        let waited = attempt.await.unwrap();
        assert_eq!(
            waited, LIMITS.outage_grace,
            "cut at the grace after the first failure"
        );
        let err = in_flight_cut(&machine, LIMITS.outage_grace).unwrap();
        assert_eq!(
            (err.kind(), err.class()),
            (ErrorKind::Unreachable, ErrorClass::Unavailable)
        );
        assert!(
            !err.proves_not_applied(),
            "the attempt may have been applied"
        );
        assert!(err.retry_after().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_that_ends_within_the_grace_cuts_nothing() {
        let machine = connected();
        tokio::spawn(cut_at_grace(Arc::downgrade(&machine), LIMITS.outage_grace));
        let attempt = in_flight(&machine);
        tokio::task::yield_now().await;
        machine.apply(down());
        tokio::time::advance(Duration::from_millis(600)).await;
        // A member answers: an election, not an outage.
        machine.apply(Signal::TopologyUnavailable);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!attempt.is_finished(), "no cut for an outage that ended");
        assert!(in_flight_cut(&machine, LIMITS.outage_grace).is_none());
        // The next outage cuts it, a grace after it began.
        machine.apply(down());
        assert_eq!(
            attempt.await.unwrap(),
            Duration::from_millis(5600) + LIMITS.outage_grace
        );
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
