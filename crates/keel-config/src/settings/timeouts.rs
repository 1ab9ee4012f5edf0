//! The time limits Keel and the driver apply to one request.

use std::time::Duration;

/// Every time limit in one place; zero is rejected everywhere (it would mean "fail at once"
/// or, for the driver, "never time out") except for `outage_grace`, where failing at once once
/// every member is known to be down is a valid choice.
///
/// The driver applies `connect` and `server_selection`; Keel's layers apply the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Time to open one TCP+TLS connection and finish the handshake (driver `connectTimeoutMS`).
    pub connect: Duration,
    /// Time the driver looks for a suitable server before failing
    /// (driver `serverSelectionTimeoutMS`).
    pub server_selection: Duration,
    /// Limit on a single attempt, enforced by Keel's attempt-timeout layer.
    pub attempt: Duration,
    /// How long a request may wait for a pooled connection, enforced by `keel-pool-core`
    /// (the driver has no such limit).
    pub checkout_wait: Duration,
    /// Overall deadline for an operation across all retries, unless the caller sets a
    /// tighter one.
    pub deadline: Duration,
    /// While no member of the deployment is reachable (every known member's last check failed),
    /// how long after the outage began a call may still wait for it to end; later calls, and
    /// queued ones once it has passed, fail at once as `Unavailable` with a `retry_after`.
    /// Enforced by `keel-pool-core`.
    pub outage_grace: Duration,
    /// While a member answers but none is primary (an election or a step-down), how long a
    /// call waits for the new primary (or until its deadline, if sooner). Enforced by
    /// `keel-pool-core`.
    pub election_wait: Duration,
}
