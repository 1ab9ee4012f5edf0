//! The primary's periodic no-op writer: when nothing was written to the oplog for a whole
//! interval (mongod's `periodicNoopIntervalSecs`, default 10 s), the primary appends
//! `{op: "n", ns: "", o: {msg: "periodic noop"}}` (mongod's repl/noop_writer.cpp), so an idle
//! change stream's `postBatchResumeToken` keeps moving and the last `local.oplog.rs` entry is
//! never much older than the interval.
//!
//! One task per replica set, on tokio's clock (tests with paused time drive it with
//! `tokio::time::advance`).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Shared, lock};

/// mongod's `periodicNoopIntervalSecs` default.
pub(crate) const DEFAULT_NOOP_INTERVAL: Duration = Duration::from_secs(10);

/// Starts the writer for `shared`'s replica set (`None` for a standalone).
pub(crate) fn spawn(shared: &Arc<Shared>, interval: Duration) -> Option<JoinHandle<()>> {
    shared.replica_set.as_ref()?;
    let shared = Arc::clone(shared);
    Some(tokio::spawn(async move {
        let Some(rs) = shared.replica_set.as_ref() else {
            return;
        };
        let mut last_seen = lock(&shared.storage)
            .oplog()
            .map_or(0, |o| o.appended_count());
        loop {
            tokio::time::sleep(interval).await;
            let mut storage = lock(&shared.storage);
            let Some(oplog) = storage.oplog_mut() else {
                return;
            };
            // As noop_writer.cpp: only a primary writes, and only if the oplog did not move
            // since the last check. A stopped or frozen primary writes nothing.
            let primary_answers = rs.primary().is_some_and(|p| rs.is_answering(p));
            if oplog.appended_count() == last_seen && primary_answers {
                oplog.append_noop();
            }
            last_seen = oplog.appended_count();
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ReplicaSet;
    use crate::storage::{ClusterClock, OpKind, Storage};

    fn shared() -> Arc<Shared> {
        let clock = Arc::new(ClusterClock::default());
        let mut storage = Storage::default();
        storage.enable_oplog(100, Arc::clone(&clock));
        let rs = ReplicaSet::new("rs0".into(), vec!["127.0.0.1:1000".into()]);
        rs.set_liveness(vec![true]);
        Arc::new(Shared::new(storage, Some(rs), None, None, clock))
    }

    fn kinds(s: &Shared) -> Vec<OpKind> {
        let storage = lock(&s.storage);
        let zero = bson::Timestamp {
            time: 0,
            increment: 0,
        };
        storage
            .oplog()
            .unwrap()
            .since(zero)
            .map(|e| e.kind.clone())
            .collect()
    }

    async fn advance(d: Duration) {
        tokio::time::advance(d).await;
        tokio::task::yield_now().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_primary_writes_a_noop_every_interval_and_a_write_postpones_it() {
        let s = shared();
        let writer = spawn(&s, Duration::from_secs(10)).unwrap();
        tokio::task::yield_now().await;
        advance(Duration::from_millis(9_900)).await;
        assert!(kinds(&s).is_empty(), "nothing before the interval");
        advance(Duration::from_millis(100)).await;
        assert_eq!(kinds(&s), [OpKind::Noop]);
        advance(Duration::from_secs(10)).await;
        assert_eq!(kinds(&s), [OpKind::Noop, OpKind::Noop]);
        // A write during the next interval: no noop at its end.
        advance(Duration::from_secs(5)).await;
        lock(&s.storage)
            .insert("app", "c", bson::doc! {"_id": 1})
            .unwrap();
        advance(Duration::from_secs(5)).await;
        assert_eq!(kinds(&s).len(), 4, "create + insert, no noop");
        advance(Duration::from_secs(10)).await;
        assert_eq!(kinds(&s).last(), Some(&OpKind::Noop));
        // A primary that does not answer writes nothing.
        s.replica_set.as_ref().unwrap().set_liveness(vec![false]);
        let before = kinds(&s).len();
        advance(Duration::from_secs(30)).await;
        assert_eq!(kinds(&s).len(), before);
        writer.abort();
    }
}
