//! The demo's fault schedule, as data: a list of timed faults scaled to the length of the run.
//!
//! The deployment decides how to cause each fault ([`super::deployment::Deployment::start_fault`]);
//! this module only says what happens when. A deployment that cannot cause a fault (a real
//! cluster Keel does not own, or a single server asked for a step-down) is given a schedule
//! without it.

use std::fmt;
use std::time::Duration;

/// How long the run is for which the schedule's durations are written as they are; shorter
/// runs scale every duration down in proportion.
const REFERENCE_RUN: Duration = Duration::from_secs(60);

/// One kind of trouble, the way it happens in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// Connections drop in the middle of calls, as when a load balancer or NAT drops its
    /// connection table.
    ResetConnections,
    /// Every call is delayed by `delay` for the fault's span: a congested network or a busy
    /// server.
    Latency {
        /// The added delay per call.
        delay: Duration,
    },
    /// Requests vanish for the fault's span: connections hang without an error, as in a
    /// network partition.
    BlackHole,
    /// The server is down for the fault's span (stopped, then restarted on the same port with
    /// its data).
    Outage,
    /// The primary's process dies for the fault's span; the other members elect a new
    /// primary on their own once it has been silent for the election timeout (replica sets
    /// only), and it comes back as a secondary.
    PrimaryKilled,
    /// The primary steps down and another member is elected (replica sets only).
    StepDown,
}

impl FaultKind {
    /// Whether this fault needs a replica set.
    pub(crate) fn needs_replica_set(self) -> bool {
        matches!(self, FaultKind::StepDown | FaultKind::PrimaryKilled)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::ResetConnections => f.write_str("connection reset"),
            FaultKind::Latency { delay, .. } => write!(f, "+{} ms latency", delay.as_millis()),
            FaultKind::BlackHole => f.write_str("black hole"),
            FaultKind::Outage => f.write_str("server outage"),
            FaultKind::PrimaryKilled => f.write_str("primary killed"),
            FaultKind::StepDown => f.write_str("primary step-down"),
        }
    }
}

/// A fault at a moment of the run, lasting `lasts` (zero for an instant fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    /// When it starts, from the start of the run.
    pub(crate) at: Duration,
    /// How long it lasts; zero for an instant fault such as a reset.
    pub(crate) lasts: Duration,
    /// What happens.
    pub(crate) kind: FaultKind,
}

/// One line of the plan: when, as a fraction of the run; what; and how long on a 60 s run.
struct Planned {
    at_fraction: f64,
    lasts_on_reference: Duration,
    kind: FaultKind,
}

/// The plan for a 60-second run. Faults end by three quarters of the run so the last quarter
/// shows the recovery, and they never overlap, so each one's effect can be told apart.
const PLAN: &[Planned] = &[
    Planned {
        at_fraction: 0.10,
        lasts_on_reference: Duration::ZERO,
        kind: FaultKind::ResetConnections,
    },
    Planned {
        at_fraction: 0.17,
        lasts_on_reference: Duration::from_secs(6),
        kind: FaultKind::Latency {
            delay: Duration::from_millis(150),
        },
    },
    Planned {
        at_fraction: 0.30,
        lasts_on_reference: Duration::ZERO,
        kind: FaultKind::ResetConnections,
    },
    Planned {
        at_fraction: 0.36,
        lasts_on_reference: Duration::from_secs(3),
        kind: FaultKind::BlackHole,
    },
    Planned {
        at_fraction: 0.48,
        lasts_on_reference: Duration::from_secs(10),
        kind: FaultKind::Outage,
    },
    Planned {
        at_fraction: 0.66,
        lasts_on_reference: PRIMARY_KILLED_ON_REFERENCE,
        kind: FaultKind::PrimaryKilled,
    },
    Planned {
        at_fraction: 0.74,
        lasts_on_reference: Duration::ZERO,
        kind: FaultKind::StepDown,
    },
];

/// How long the primary stays dead on a 60 s run.
const PRIMARY_KILLED_ON_REFERENCE: Duration = Duration::from_secs(4);

/// The embedded replica set's election timeout for a run of `run`: half the span the primary
/// stays dead, so the election happens while it is down (mongod's default of 10 s would
/// outlast the fault; a 60 s run uses 2 s).
pub(crate) fn election_timeout(run: Duration) -> Duration {
    let scale = (run.as_secs_f64() / REFERENCE_RUN.as_secs_f64()).min(1.0);
    (PRIMARY_KILLED_ON_REFERENCE.mul_f64(scale) / 2).max(Duration::from_millis(20))
}

/// The faults for a run of `run`, keeping only those `can_cause` accepts, in time order.
///
/// Durations are those of a 60 s run, scaled down in proportion for shorter runs (a 5 s run
/// gets a 0.8 s outage) and never scaled up: a longer run keeps the 10 s outage and has more
/// quiet time.
pub(crate) fn schedule(run: Duration, can_cause: impl Fn(FaultKind) -> bool) -> Vec<Fault> {
    let scale = (run.as_secs_f64() / REFERENCE_RUN.as_secs_f64()).min(1.0);
    PLAN.iter()
        .filter(|planned| can_cause(planned.kind))
        .map(|planned| Fault {
            at: run.mul_f64(planned.at_fraction),
            lasts: planned.lasts_on_reference.mul_f64(scale),
            kind: planned.kind,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single_server(kind: FaultKind) -> bool {
        !kind.needs_replica_set()
    }

    #[test]
    fn a_minute_gets_the_full_ten_second_outage() {
        let faults = schedule(Duration::from_secs(60), single_server);
        let outage = faults
            .iter()
            .find(|f| f.kind == FaultKind::Outage)
            .unwrap_or_else(|| panic!("no outage in {faults:?}"));
        assert_eq!(outage.lasts, Duration::from_secs(10));
        let expected = Duration::from_millis(28_800);
        assert!(
            outage.at.abs_diff(expected) < Duration::from_millis(1),
            "{outage:?}"
        );
    }

    #[test]
    fn short_runs_scale_durations_down_and_long_runs_do_not_scale_up() {
        let short = schedule(Duration::from_secs(6), single_server);
        let outage = short.iter().find(|f| f.kind == FaultKind::Outage);
        assert_eq!(outage.map(|f| f.lasts), Some(Duration::from_secs(1)));
        let long = schedule(Duration::from_secs(600), single_server);
        let outage = long.iter().find(|f| f.kind == FaultKind::Outage);
        assert_eq!(outage.map(|f| f.lasts), Some(Duration::from_secs(10)));
    }

    #[test]
    fn faults_are_ordered_do_not_overlap_and_end_before_the_last_quarter() {
        for seconds in [1, 5, 20, 60, 300] {
            let run = Duration::from_secs(seconds);
            let faults = schedule(run, |_| true);
            for pair in faults.windows(2) {
                assert!(pair[0].at + pair[0].lasts <= pair[1].at, "{pair:?}");
            }
            let last_end = faults.iter().map(|f| f.at + f.lasts).max();
            assert!(
                last_end.is_some_and(|end| end <= run.mul_f64(0.75)),
                "{faults:?}"
            );
        }
    }

    #[test]
    fn the_step_down_is_kept_only_where_it_can_happen() {
        let run = Duration::from_secs(60);
        assert!(
            !schedule(run, single_server)
                .iter()
                .any(|f| f.kind == FaultKind::StepDown)
        );
        assert!(
            schedule(run, |_| true)
                .iter()
                .any(|f| f.kind == FaultKind::StepDown)
        );
        assert!(schedule(run, |_| false).is_empty());
        assert!(
            !schedule(run, single_server)
                .iter()
                .any(|f| f.kind == FaultKind::PrimaryKilled)
        );
    }

    #[test]
    fn the_election_happens_while_the_primary_is_dead() {
        for seconds in [5, 60, 600] {
            let run = Duration::from_secs(seconds);
            let killed = schedule(run, |_| true)
                .into_iter()
                .find(|f| f.kind == FaultKind::PrimaryKilled)
                .unwrap_or_else(|| panic!("no primary killed in a {seconds} s run"));
            assert!(election_timeout(run) < killed.lasts, "{seconds} s");
        }
        assert_eq!(
            election_timeout(Duration::from_secs(60)),
            Duration::from_secs(2)
        );
    }
}
