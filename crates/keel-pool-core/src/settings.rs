//! What the managed client needs beyond the driver's own options, each default with its reason.

use std::time::Duration;

/// Settings of a [`ManagedClient`](crate::ManagedClient) that the driver has no option for.
///
/// Build it by hand, or let the `mongokeel` facade derive it from Keel's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagedSettings {
    /// Attempts to validate the connection at start-up before giving up.
    /// Default 3: a server restarting as the app starts gets a few seconds, a wrong URI fails fast.
    pub connect_attempts: u32,
    /// First delay between start-up attempts, doubled each time up to `connect_backoff_max`.
    /// Default 200 ms.
    pub connect_backoff: Duration,
    /// Cap of the start-up backoff. Default 2 s.
    pub connect_backoff_max: Duration,
    /// Skip start-up validation and connect on first use (the serverless preset). Default false:
    /// a long-running server should refuse to start against a database it cannot reach.
    pub lazy_connect: bool,
    /// Most requests held while the state is `Reconnecting`; more fail at once with `Overloaded`.
    /// Default 1024: enough for a burst, bounded so an outage cannot exhaust memory.
    pub reconnect_queue: usize,
    /// Longest a request waits in the reconnect queue while a member answers but none is
    /// primary (an election, a step-down), or until its own deadline, if sooner.
    /// Keel's facade sets it from `timeouts.election_wait`. Default 5 s, well
    /// under the driver's 30 s server selection.
    pub reconnect_wait: Duration,
    /// While no member is reachable (`Unreachable`: every known member's last check failed),
    /// how long after the outage began a request may still wait; then waiting requests, and
    /// new ones at once, fail as `Unavailable` with a `retry_after`. Default 1 s: longer than
    /// the driver's 500 ms between two checks of a server, so a dropped connection it re-checks
    /// at once is ridden out, short enough that callers of a dead deployment hear it within a
    /// second instead of holding a worker until their deadline.
    pub outage_grace: Duration,
    /// Pause between the reconnect probe's pings while `Reconnecting`. Default 250 ms: each ping
    /// makes the driver check the server (at most every 500 ms), so recovery is seen within ~1 s.
    pub probe_interval: Duration,
    /// Fewest time between two `reset()`s, so a flapping database cannot cause a reset storm.
    /// Default 30 s.
    pub reset_min_interval: Duration,
    /// How long `shutdown()` waits for in-flight operations. Default 10 s (below Kubernetes'
    /// default 30 s termination grace period).
    pub shutdown_grace: Duration,
}

impl Default for ManagedSettings {
    fn default() -> Self {
        Self {
            connect_attempts: 3,
            connect_backoff: Duration::from_millis(200),
            connect_backoff_max: Duration::from_secs(2),
            lazy_connect: false,
            reconnect_queue: 1024,
            reconnect_wait: Duration::from_secs(5),
            outage_grace: Duration::from_secs(1),
            probe_interval: Duration::from_millis(250),
            reset_min_interval: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ManagedSettings {
    /// The delay before start-up attempt `attempt` (1-based; the first attempt has none).
    pub(crate) fn connect_delay(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let factor = 2u32.saturating_pow(attempt - 2);
        self.connect_backoff
            .saturating_mul(factor)
            .min(self.connect_backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_delay_doubles_up_to_the_cap() {
        let settings = ManagedSettings::default();
        let delays: Vec<_> = (1..=6)
            .map(|a| settings.connect_delay(a).as_millis())
            .collect();
        assert_eq!(delays, [0, 200, 400, 800, 1600, 2000]);
        assert_eq!(settings.connect_delay(u32::MAX), Duration::from_secs(2));
    }
}
