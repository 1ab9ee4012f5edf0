//! The election monitor: when the primary stops answering (its listener stopped, or the member
//! paused) for the set's election timeout, a reachable secondary is elected with a new term, as
//! mongod's secondaries do once their election timer runs out without a heartbeat from the
//! primary (replication's `electionTimeoutMillis`, default 10 s).
//!
//! One task per replica set; it runs on tokio's clock, so tests with paused time drive it with
//! `tokio::time::advance`.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Shared;

/// Starts the monitor for `shared`'s replica set (`None` for a standalone).
pub(crate) fn spawn(shared: &Arc<Shared>) -> Option<JoinHandle<()>> {
    shared.replica_set.as_ref()?;
    let shared = Arc::clone(shared);
    Some(tokio::spawn(async move {
        let Some(rs) = shared.replica_set.as_ref() else {
            return;
        };
        let mut liveness = rs.subscribe_liveness();
        let mut roles = rs.subscribe();
        // Since when the current primary has been silent.
        let mut silent_since: Option<(usize, Instant)> = None;
        loop {
            liveness.mark_unchanged();
            roles.mark_unchanged();
            silent_since = match (rs.silent_primary(), silent_since) {
                (None, _) => None,
                (Some(p), Some((q, since))) if p == q => Some((p, since)),
                (Some(p), _) => Some((p, Instant::now())),
            };
            let deadline = silent_since.map(|(_, since)| since + rs.election_timeout);
            if let (Some((silent, _)), Some(deadline)) = (silent_since, deadline)
                && Instant::now() >= deadline
                && rs.elect_replacement(silent).is_some()
            {
                continue;
            }
            let timer = async {
                match deadline {
                    // Past the deadline without a majority: wait for a member to come back.
                    Some(d) if Instant::now() < d => tokio::time::sleep_until(d).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                () = timer => {}
                r = liveness.changed() => if r.is_err() { return },
                r = roles.changed() => if r.is_err() { return },
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::server::ReplicaSet;
    use crate::storage::{ClusterClock, Storage};

    fn shared(n: usize, timeout: Duration) -> Arc<Shared> {
        let hosts = (0..n).map(|i| format!("127.0.0.1:{}", 1000 + i)).collect();
        let rs = ReplicaSet::with_election_timeout("rs0".into(), hosts, timeout);
        Arc::new(Shared::new(
            Storage::default(),
            Some(rs),
            None,
            None,
            Arc::new(ClusterClock::default()),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_primary_is_replaced_after_the_election_timeout() {
        let s = shared(3, Duration::from_secs(10));
        let monitor = spawn(&s).unwrap();
        let rs = s.replica_set.as_ref().unwrap();
        let mut roles = rs.subscribe();
        rs.set_liveness(vec![false, true, true]);
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(9_900)).await;
        tokio::task::yield_now().await;
        assert_eq!(rs.primary(), Some(0), "no election before the timeout");
        // A member that comes back in time keeps its role, and the timer starts again.
        rs.set_liveness(vec![true, true, true]);
        tokio::task::yield_now().await;
        rs.set_liveness(vec![false, true, true]);
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(9_900)).await;
        tokio::task::yield_now().await;
        assert_eq!(rs.primary(), Some(0));
        let started = Instant::now();
        roles.mark_unchanged();
        roles.changed().await.unwrap();
        assert_eq!(rs.primary(), Some(1));
        assert!(started.elapsed() <= Duration::from_millis(100));
        monitor.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_majority_nobody_is_elected_until_a_member_returns() {
        let s = shared(3, Duration::from_secs(1));
        let monitor = spawn(&s).unwrap();
        let rs = s.replica_set.as_ref().unwrap();
        rs.set_liveness(vec![false, false, true]);
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_secs(5)).await;
        tokio::task::yield_now().await;
        assert_eq!(rs.primary(), Some(0));
        let mut roles = rs.subscribe();
        rs.set_liveness(vec![false, true, true]);
        roles.changed().await.unwrap();
        assert_eq!(rs.primary(), Some(1), "the timeout had long passed");
        monitor.abort();
    }
}
