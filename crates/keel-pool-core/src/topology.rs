//! What the deployment looks like now, from the driver's SDAM events: a primary, no primary but
//! a member that may answer (an election, a dropped connection being re-checked), or no member
//! reachable — judged by the driver's monitors alone.
//!
//! Why the monitors and not the server descriptions: the driver marks a server `Unknown` after
//! an *application* network error too (SDAM, "Network error when reading or writing"), so one
//! reset connection makes a healthy one-member deployment look down until the next check. A
//! monitor's view is stricter: after a network error on a known server it retries the check
//! once at once (Server Monitoring specification, "Network or command error during server
//! check", step 4; the Rust driver 3.x does so in `Monitor::check_server`, emitting one
//! `ServerHeartbeatFailedEvent` per failed attempt). So a member is taken as down only once two
//! checks in a row failed — the check and its immediate retry when it was known, or two checks
//! a heartbeat apart when it already was `Unknown` — with no success in between. A reset fails
//! at most one check (the retry opens a new connection and succeeds); a stopped server fails
//! both (connection refused).

use std::collections::HashMap;

use mongodb::{
    event::sdam::{SdamEvent, TopologyDescription},
    options::ServerAddress,
};
use tokio::time::Instant;

use crate::state::Signal;

/// Checks that must fail in a row before a member counts as down: a check and its retry.
const FAILED_CHECKS_FOR_DOWN: u32 = 2;

/// What the monitor of one member saw since its last successful check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Member {
    /// Checks failed in a row (reset by a successful check).
    failed_checks: u32,
    /// When the first of them failed.
    failing_since: Option<Instant>,
}

impl Member {
    fn is_down(&self) -> bool {
        self.failed_checks >= FAILED_CHECKS_FOR_DOWN
    }
}

/// The deployment as the driver's events describe it, turned into state-machine signals.
#[derive(Debug, Default)]
pub(crate) struct Deployment {
    members: HashMap<ServerAddress, Member>,
    writable: bool,
    readable: bool,
}

impl Deployment {
    /// Takes in one SDAM event; returns the signal the deployment implies afterwards, or `None`
    /// for an event that tells nothing new (heartbeats started, server opened…).
    pub(crate) fn observe(&mut self, event: &SdamEvent, now: Instant) -> Option<Signal> {
        match event {
            SdamEvent::TopologyDescriptionChanged(changed) => {
                self.topology(&changed.new_description);
            }
            SdamEvent::ServerHeartbeatFailed(failed) => {
                self.check_failed(&failed.server_address, now);
            }
            SdamEvent::ServerHeartbeatSucceeded(succeeded) => {
                self.check_succeeded(&succeeded.server_address);
            }
            _ => return None,
        }
        Some(self.signal())
    }

    /// A new topology description: which members exist, and whether one can serve.
    fn topology(&mut self, topology: &TopologyDescription) {
        let servers = topology.servers();
        self.members
            .retain(|address, _| servers.contains_key(address));
        for address in servers.keys() {
            self.members.entry((*address).clone()).or_default();
        }
        self.writable = topology.has_writable_server();
        // The default read preference (primary): what a call without one can use.
        self.readable = topology.has_readable_server(None);
    }

    fn check_failed(&mut self, address: &ServerAddress, now: Instant) {
        // A heartbeat of a member not (or no longer) in the topology changes nothing.
        if let Some(member) = self.members.get_mut(address) {
            member.failed_checks = member.failed_checks.saturating_add(1);
            member.failing_since.get_or_insert(now);
        }
    }

    fn check_succeeded(&mut self, address: &ServerAddress) {
        if let Some(member) = self.members.get_mut(address) {
            *member = Member::default();
        }
    }

    /// The signal of the current picture.
    ///
    /// "No member reachable" needs every known member down: one member that answers, or that
    /// failed a single check only (a reset being re-checked), keeps the deployment in the
    /// `TopologyUnavailable` case, where calls wait for a primary instead of failing fast. The
    /// outage began when the last member to go down failed its first check.
    pub(crate) fn signal(&self) -> Signal {
        if self.writable {
            return Signal::TopologyWritable;
        }
        if self.readable {
            return Signal::TopologyReadOnly;
        }
        let mut since = None;
        for member in self.members.values() {
            if !member.is_down() {
                return Signal::TopologyUnavailable;
            }
            since = since.max(member.failing_since);
        }
        match since {
            Some(since) => Signal::NoMemberReachable { since },
            None => Signal::TopologyUnavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn host(port: u16) -> ServerAddress {
        ServerAddress::Tcp {
            host: "127.0.0.1".to_owned(),
            port: Some(port),
        }
    }

    /// A deployment of `ports` members, none able to serve (as after an error marked them
    /// `Unknown`).
    fn no_primary(ports: &[u16]) -> Deployment {
        Deployment {
            members: ports
                .iter()
                .map(|p| (host(*p), Member::default()))
                .collect(),
            writable: false,
            readable: false,
        }
    }

    #[test]
    fn a_primary_or_a_readable_server_wins() {
        let mut deployment = no_primary(&[1, 2]);
        let now = Instant::now();
        for _ in 0..3 {
            deployment.check_failed(&host(1), now);
        }
        deployment.writable = true;
        assert_eq!(deployment.signal(), Signal::TopologyWritable);
        deployment.writable = false;
        deployment.readable = true;
        assert_eq!(deployment.signal(), Signal::TopologyReadOnly);
    }

    #[test]
    fn an_application_error_alone_is_not_an_outage() {
        // The driver marked the only member Unknown after a reset; its monitor saw nothing yet.
        assert_eq!(no_primary(&[1]).signal(), Signal::TopologyUnavailable);
    }

    #[test]
    fn a_reset_fails_one_check_whose_retry_succeeds() {
        let mut deployment = no_primary(&[1]);
        deployment.check_failed(&host(1), Instant::now());
        assert_eq!(deployment.signal(), Signal::TopologyUnavailable);
        deployment.check_succeeded(&host(1));
        // Another reset later starts a new count.
        deployment.check_failed(&host(1), Instant::now());
        assert_eq!(deployment.signal(), Signal::TopologyUnavailable);
    }

    #[test]
    fn a_check_and_its_retry_failing_is_an_outage_from_the_first_failure() {
        let mut deployment = no_primary(&[1]);
        let first = Instant::now();
        deployment.check_failed(&host(1), first);
        deployment.check_failed(&host(1), first + Duration::from_millis(500));
        assert_eq!(
            deployment.signal(),
            Signal::NoMemberReachable { since: first }
        );
    }

    #[test]
    fn one_member_answering_is_an_election_not_an_outage() {
        let mut deployment = no_primary(&[1, 2, 3]);
        let now = Instant::now();
        for port in [1, 2] {
            deployment.check_failed(&host(port), now);
            deployment.check_failed(&host(port), now);
        }
        // Member 3 is a secondary waiting for an election: it answers.
        deployment.check_succeeded(&host(3));
        assert_eq!(deployment.signal(), Signal::TopologyUnavailable);
        // A member with a single failed check might be a reset: no fast-fail on a guess.
        let last_to_fail = now + Duration::from_millis(200);
        deployment.check_failed(&host(3), last_to_fail);
        assert_eq!(deployment.signal(), Signal::TopologyUnavailable);
        deployment.check_failed(&host(3), now + Duration::from_secs(1));
        assert_eq!(
            deployment.signal(),
            Signal::NoMemberReachable {
                since: last_to_fail
            },
            "the outage began when the last member started failing"
        );
    }

    #[test]
    fn members_follow_the_topology() {
        let mut deployment = no_primary(&[]);
        assert_eq!(deployment.signal(), Signal::TopologyUnavailable);
        // Heartbeats of a host the topology does not hold are ignored.
        deployment.check_failed(&host(9), Instant::now());
        assert!(deployment.members.is_empty());
    }
}
