//! The connection state machine: what Keel believes about the database, published on a `watch`.

use std::fmt;

use std::sync::Arc;

use tokio::{
    sync::{Notify, futures::OwnedNotified, watch},
    time::Instant,
};

/// What Keel believes about its connection to the deployment.
///
/// ```text
/// Connecting ──► Connected ◄──► Degraded
///      │             │  ▲           │
///      │             ▼  │           ▼
///      └────────► Reconnecting ◄────┘        (any) ──► Closed
///                    ▲  │
///                    │  ▼
///                 Unreachable   (from Connected/Degraded too; back to Connected when a
///                                primary answers)
/// ```
///
/// `Reconnecting` and `Unreachable` tell a failover from a dead deployment: in the first a
/// member still answers (an election, a step-down, a dropped connection being re-checked) and
/// calls wait for the new primary; in the second every known member failed its last check and
/// calls fail fast after `outage_grace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Start-up: the first connection has not been validated yet.
    Connecting,
    /// A writable server is known and operations succeed.
    Connected,
    /// Reachable but impaired: only readable servers, a cleared pool, or operations failing with
    /// infrastructure errors.
    Degraded,
    /// No usable server yet, but not every member is known to be down: an election or a
    /// step-down in progress, or a dropped connection the driver is checking again. Keel holds
    /// new requests in a bounded queue (up to `election_wait`) while the driver reconnects.
    Reconnecting,
    /// No member is reachable: every known member's last check failed (refused, reset, timed
    /// out). Calls wait at most until `outage_grace` after the outage began, then fail fast as
    /// `Unavailable` with a `retry_after`.
    Unreachable,
    /// Shut down: no operation is admitted any more.
    Closed,
}

impl ConnectionState {
    /// A short stable name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Degraded => "degraded",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Unreachable => "unreachable",
            ConnectionState::Closed => "closed",
        }
    }

    /// The value of the `keel_connection_state` gauge for this state.
    pub fn gauge_value(self) -> f64 {
        match self {
            ConnectionState::Connecting => 0.0,
            ConnectionState::Connected => 1.0,
            ConnectionState::Degraded => 2.0,
            ConnectionState::Reconnecting => 3.0,
            ConnectionState::Closed => 4.0,
            ConnectionState::Unreachable => 5.0,
        }
    }

    /// Whether an operation sent now has a chance to reach a server.
    pub fn can_serve(self) -> bool {
        matches!(
            self,
            ConnectionState::Connecting | ConnectionState::Connected | ConnectionState::Degraded
        )
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened, as far as the state machine is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Start-up validation (hello + ping) succeeded.
    Validated,
    /// SDAM: the topology has a writable server.
    TopologyWritable,
    /// SDAM: the topology has readable but no writable servers.
    TopologyReadOnly,
    /// SDAM: no server is available, but not every member is known to be down.
    TopologyUnavailable,
    /// SDAM: every known member's monitor failed a check and its retry; the outage began
    /// `since` (the first of those failures, of the last member to go down).
    NoMemberReachable {
        /// When the outage began: the outage grace counts from here.
        since: Instant,
    },
    /// CMAP: a connection pool was cleared.
    PoolCleared,
    /// An operation succeeded.
    OperationSucceeded,
    /// An operation failed with an infrastructure error that still reached a server.
    OperationFailed,
    /// An operation could not find a server.
    ServerUnreachable,
    /// Shutdown finished.
    Closed,
}

/// The transition table. `None` means "stay".
pub(crate) fn next(state: ConnectionState, signal: Signal) -> Option<ConnectionState> {
    use ConnectionState::*;
    use Signal::*;
    let to = match (state, signal) {
        (ConnectionState::Closed, _) => return None,
        (_, Signal::Closed) => ConnectionState::Closed,
        (
            Connecting | Degraded | Reconnecting,
            Validated | TopologyWritable | OperationSucceeded,
        ) => Connected,
        (Connected | Reconnecting, TopologyReadOnly) => Degraded,
        (Connected, PoolCleared | OperationFailed) => Degraded,
        (Connected | Degraded, TopologyUnavailable | ServerUnreachable) => Reconnecting,
        (Unreachable, Validated | TopologyWritable | OperationSucceeded) => Connected,
        (Unreachable, TopologyReadOnly) => Degraded,
        // A member answers again, but no primary yet: an election.
        (Unreachable, TopologyUnavailable) => Reconnecting,
        (Connected | Degraded | Reconnecting, NoMemberReachable { .. }) => Unreachable,
        // Before the first validation, failures keep us Connecting: there is nothing to go back to.
        _ => return None,
    };
    (to != state).then_some(to)
}

/// Owns the state and publishes every change on a `watch`, a `tracing` event and metrics.
#[derive(Debug)]
pub(crate) struct StateMachine {
    sender: watch::Sender<ConnectionState>,
    /// When the state last became `Unreachable` (kept while it stays so): the outage grace
    /// counts from there, for queued and new calls alike.
    unreachable_since: std::sync::Mutex<Option<Instant>>,
    /// Woken (`notify_waiters`) when an outage has lasted the grace: attempts already with the
    /// driver wait on it so they end then too (see [`waiting::cut_at_grace`](crate::waiting)).
    outage_cut: Arc<Notify>,
}

impl StateMachine {
    pub(crate) fn new() -> Self {
        let (sender, _) = watch::channel(ConnectionState::Connecting);
        metrics::gauge!("keel_connection_state").set(ConnectionState::Connecting.gauge_value());
        Self {
            sender,
            unreachable_since: std::sync::Mutex::new(None),
            outage_cut: Arc::new(Notify::new()),
        }
    }

    /// A future that completes at the next outage cut (created now, so a cut between now and
    /// its first poll is not missed).
    pub(crate) fn outage_cut(&self) -> OwnedNotified {
        Arc::clone(&self.outage_cut).notified_owned()
    }

    /// Ends every [`outage_cut`](Self::outage_cut) future created so far.
    pub(crate) fn cut_in_flight(&self) {
        self.outage_cut.notify_waiters();
    }

    /// When the current outage (state `Unreachable`) began; `None` in any other state.
    pub(crate) fn unreachable_since(&self) -> Option<Instant> {
        *self
            .unreachable_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn current(&self) -> ConnectionState {
        *self.sender.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.sender.subscribe()
    }

    /// Applies a signal; returns the new state if it changed.
    pub(crate) fn apply(&self, signal: Signal) -> Option<ConnectionState> {
        // Nearly every signal (each successful operation) changes nothing: look under the
        // shared lock first. A change racing in between is re-checked under the write lock.
        next(self.current(), signal)?;
        let mut changed = None;
        self.sender
            .send_if_modified(|state| match next(*state, signal) {
                Some(to) => {
                    // Set under the watch's lock, before receivers are woken, so a waiter that
                    // sees `Unreachable` also sees when it began.
                    *self
                        .unreachable_since
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        (to == ConnectionState::Unreachable).then(|| match signal {
                            Signal::NoMemberReachable { since } => since,
                            _ => Instant::now(),
                        });
                    changed = Some((*state, to));
                    *state = to;
                    true
                }
                None => false,
            });
        let (from, to) = changed?;
        match to {
            ConnectionState::Connected | ConnectionState::Closed => {
                tracing::info!(
                    from = from.as_str(),
                    to = to.as_str(),
                    ?signal,
                    "keel connection state changed"
                );
            }
            _ => {
                tracing::warn!(
                    from = from.as_str(),
                    to = to.as_str(),
                    ?signal,
                    "keel connection state changed"
                );
            }
        }
        metrics::gauge!("keel_connection_state").set(to.gauge_value());
        metrics::counter!(
            "keel_connection_state_transitions_total",
            "from" => from.as_str(),
            "to" => to.as_str()
        )
        .increment(1);
        Some(to)
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnectionState::*, Signal::*, *};

    fn down() -> Signal {
        NoMemberReachable {
            since: Instant::now(),
        }
    }

    #[test]
    fn start_up_path() {
        assert_eq!(next(Connecting, Validated), Some(Connected));
        assert_eq!(next(Connecting, ServerUnreachable), None);
        assert_eq!(next(Connecting, OperationFailed), None);
        assert_eq!(next(Connecting, TopologyWritable), Some(Connected));
    }

    #[test]
    fn outage_and_recovery_path() {
        assert_eq!(next(Connected, TopologyUnavailable), Some(Reconnecting));
        assert_eq!(next(Connected, ServerUnreachable), Some(Reconnecting));
        assert_eq!(next(Reconnecting, OperationFailed), None);
        assert_eq!(next(Reconnecting, TopologyWritable), Some(Connected));
        assert_eq!(next(Reconnecting, OperationSucceeded), Some(Connected));
    }

    #[test]
    fn degradation_path() {
        assert_eq!(next(Connected, PoolCleared), Some(Degraded));
        assert_eq!(next(Connected, OperationFailed), Some(Degraded));
        assert_eq!(next(Connected, TopologyReadOnly), Some(Degraded));
        assert_eq!(next(Degraded, OperationFailed), None);
        assert_eq!(next(Degraded, TopologyUnavailable), Some(Reconnecting));
        assert_eq!(next(Degraded, OperationSucceeded), Some(Connected));
        assert_eq!(next(Reconnecting, TopologyReadOnly), Some(Degraded));
    }

    #[test]
    fn dead_deployment_path() {
        assert_eq!(next(Connected, down()), Some(Unreachable));
        assert_eq!(next(Degraded, down()), Some(Unreachable));
        assert_eq!(next(Reconnecting, down()), Some(Unreachable));
        // Before the first validation there is nothing to tell apart.
        assert_eq!(next(Connecting, down()), None);
        for failure in [OperationFailed, ServerUnreachable, PoolCleared] {
            assert_eq!(next(Unreachable, failure), None);
        }
        // A member answers without a primary: an election, so calls wait again.
        assert_eq!(next(Unreachable, TopologyUnavailable), Some(Reconnecting));
        assert_eq!(next(Unreachable, TopologyReadOnly), Some(Degraded));
        assert_eq!(next(Unreachable, TopologyWritable), Some(Connected));
        assert_eq!(next(Unreachable, OperationSucceeded), Some(Connected));
    }

    #[test]
    fn the_machine_remembers_when_the_outage_began() {
        let machine = StateMachine::new();
        machine.apply(Validated);
        assert_eq!(machine.unreachable_since(), None);
        let since = Instant::now() - std::time::Duration::from_millis(300);
        machine.apply(NoMemberReachable { since });
        assert_eq!(
            machine.unreachable_since(),
            Some(since),
            "the outage began with the first failed check, not when it was judged one"
        );
        machine.apply(ServerUnreachable);
        assert_eq!(
            machine.unreachable_since(),
            Some(since),
            "still the same outage"
        );
        machine.apply(TopologyWritable);
        assert_eq!(machine.unreachable_since(), None);
    }

    #[test]
    fn closed_is_terminal() {
        for state in [Connecting, Connected, Degraded, Reconnecting, Unreachable] {
            assert_eq!(next(state, Signal::Closed), Some(ConnectionState::Closed));
        }
        for signal in [
            Validated,
            TopologyWritable,
            OperationSucceeded,
            ServerUnreachable,
        ] {
            assert_eq!(next(ConnectionState::Closed, signal), None);
        }
    }

    #[test]
    fn machine_publishes_changes_only() {
        let machine = StateMachine::new();
        let mut rx = machine.subscribe();
        assert_eq!(machine.apply(Validated), Some(Connected));
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), Connected);
        assert_eq!(machine.apply(OperationSucceeded), None);
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn only_live_states_can_serve() {
        assert!(Connected.can_serve() && Degraded.can_serve() && Connecting.can_serve());
        assert!(!Reconnecting.can_serve() && !ConnectionState::Closed.can_serve());
        assert!(!Unreachable.can_serve());
    }
}
