//! What the deployment looks like now, derived from the driver's SDAM topology description:
//! a primary, no primary but a member answering (an election), or no member reachable.

use mongodb::ServerType;
use mongodb::event::sdam::TopologyDescription;

use crate::state::Signal;

/// What the driver's monitors last learned of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemberCheck {
    /// The member answered its last check (any known type: primary, secondary, standalone…).
    Answered,
    /// The member is unknown because its last check (or an operation on it) failed: refused,
    /// reset, timed out. The SDAM specification keeps that error in the server description.
    Failed,
    /// The member is unknown and has not been checked yet (start-up, a newly discovered host).
    Unchecked,
}

/// The signal a topology implies, from whether it has a writable server, a readable one (for
/// the default read preference, primary), and each member's last check.
///
/// "No member reachable" needs every known member to have failed: one member answering (a
/// secondary during an election, a host not yet checked) keeps the deployment in the
/// `TopologyUnavailable` case, where calls wait for a primary instead of failing fast.
pub(crate) fn signal(writable: bool, readable: bool, members: &[MemberCheck]) -> Signal {
    if writable {
        Signal::TopologyWritable
    } else if readable {
        Signal::TopologyReadOnly
    } else if !members.is_empty() && members.iter().all(|m| *m == MemberCheck::Failed) {
        Signal::NoMemberReachable
    } else {
        Signal::TopologyUnavailable
    }
}

/// The signal of a topology description the driver published.
pub(crate) fn signal_of(topology: &TopologyDescription) -> Signal {
    let members: Vec<MemberCheck> = topology
        .servers()
        .values()
        .map(|server| match (server.server_type(), server.error()) {
            (ServerType::Unknown, Some(_)) => MemberCheck::Failed,
            (ServerType::Unknown, None) => MemberCheck::Unchecked,
            _ => MemberCheck::Answered,
        })
        .collect();
    signal(
        topology.has_writable_server(),
        topology.has_readable_server(None),
        &members,
    )
}

#[cfg(test)]
mod tests {
    use super::{MemberCheck::*, *};

    #[test]
    fn a_primary_or_a_readable_server_wins() {
        assert_eq!(
            signal(true, true, &[Answered, Failed]),
            Signal::TopologyWritable
        );
        assert_eq!(signal(false, true, &[Answered]), Signal::TopologyReadOnly);
    }

    #[test]
    fn every_member_failed_is_an_outage() {
        assert_eq!(signal(false, false, &[Failed]), Signal::NoMemberReachable);
        assert_eq!(
            signal(false, false, &[Failed, Failed, Failed]),
            Signal::NoMemberReachable
        );
    }

    #[test]
    fn one_member_answering_is_an_election_not_an_outage() {
        // Secondaries answer while the set elects a primary.
        assert_eq!(
            signal(false, false, &[Failed, Answered, Answered]),
            Signal::TopologyUnavailable
        );
        // A member not checked yet might answer: do not fail fast on a guess.
        assert_eq!(
            signal(false, false, &[Failed, Unchecked]),
            Signal::TopologyUnavailable
        );
        assert_eq!(signal(false, false, &[]), Signal::TopologyUnavailable);
    }
}
