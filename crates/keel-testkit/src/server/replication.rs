//! Opt-in replication lag: a lagging secondary serves reads from the data as it was `lag` ago,
//! a read with `readConcern.afterClusterTime` there waits until the member has applied that
//! time (causally consistent sessions), and `w: "majority"` (or `w: n`) waits until enough
//! members would have applied the write, failing with `writeConcernError` 64 when `wtimeout`
//! expires first.
//!
//! The members still share one data set; a lagging member keeps snapshots of it, taken after
//! each write and applied `lag` later. Without any lag nothing is copied.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{Bson, Document, Timestamp, doc};
use tokio::time::Instant;

use super::lock;
use crate::commands::codes;
use crate::storage::{Database, Storage};

type Snapshot = Arc<BTreeMap<String, Database>>;

/// What one lagging member has applied (as of which cluster time), and what it will apply
/// when.
#[derive(Debug)]
struct View {
    applied: (Timestamp, Snapshot),
    pending: VecDeque<(Instant, Timestamp, Snapshot)>,
}

/// Cluster times in their order (seconds, then increment).
fn key(ts: Timestamp) -> (u32, u32) {
    (ts.time, ts.increment)
}

/// Each member's lag and, for the lagging ones, their view of the data.
#[derive(Debug)]
pub(crate) struct Replication {
    lags: Vec<Duration>,
    views: Mutex<Vec<Option<View>>>,
}

impl Replication {
    /// `lags[i]` is member `i`'s lag (zero: applies every write at once); every member starts
    /// with `storage` as of cluster time `now`.
    pub(crate) fn new(lags: Vec<Duration>, storage: &Storage, now: Timestamp) -> Self {
        let start: Snapshot = Arc::new(storage.databases.clone());
        let views = lags
            .iter()
            .map(|lag| {
                (!lag.is_zero()).then(|| View {
                    applied: (now, Arc::clone(&start)),
                    pending: VecDeque::new(),
                })
            })
            .collect();
        Self {
            lags,
            views: Mutex::new(views),
        }
    }

    /// Whether any member lags (otherwise nothing here does anything).
    pub(crate) fn any_lag(&self) -> bool {
        self.lags.iter().any(|l| !l.is_zero())
    }

    /// Member `member`'s lag.
    pub(crate) fn lag(&self, member: usize) -> Duration {
        self.lags.get(member).copied().unwrap_or_default()
    }

    /// After a write: every lagging member applies the data as it is now (cluster time `ts`),
    /// `lag` from now.
    pub(crate) fn record_write(&self, storage: &Storage, ts: Timestamp) {
        if !self.any_lag() {
            return;
        }
        let snapshot: Snapshot = Arc::new(storage.databases.clone());
        let now = Instant::now();
        for (member, view) in lock(&self.views).iter_mut().enumerate() {
            if let Some(view) = view {
                view.pending
                    .push_back((now + self.lag(member), ts, Arc::clone(&snapshot)));
            }
        }
    }

    /// The data a lagging `member` has applied by now (`None`: it does not lag).
    pub(crate) fn view(&self, member: usize) -> Option<Storage> {
        let mut views = lock(&self.views);
        let view = views.get_mut(member)?.as_mut()?;
        let now = Instant::now();
        while view.pending.front().is_some_and(|(at, _, _)| *at <= now) {
            if let Some((_, ts, snapshot)) = view.pending.pop_front() {
                view.applied = (ts, snapshot);
            }
        }
        Some(Storage::with_databases(view.applied.1.as_ref().clone()))
    }

    /// When lagging `member` will have applied cluster time `after` (mongod's
    /// `afterClusterTime` wait): `None` if it already has, or does not lag. A time past every
    /// write it knows of waits for all of them.
    pub(crate) fn caught_up_at(&self, member: usize, after: Timestamp) -> Option<Instant> {
        let views = lock(&self.views);
        let view = views.get(member)?.as_ref()?;
        if key(view.applied.0) >= key(after) {
            return None;
        }
        let now = Instant::now();
        view.pending
            .iter()
            .find(|(_, ts, _)| key(*ts) >= key(after))
            .or_else(|| view.pending.back())
            .map(|(at, _, _)| *at)
            .filter(|at| *at > now)
    }
}

/// How many members must have a write, from the command's `writeConcern.w` (`None`: only
/// the primary, the default `w: 1`, or a `w` this server does not model, such as tags).
fn required(write_concern: &Document, members: usize) -> Option<usize> {
    match write_concern.get("w") {
        Some(Bson::String(s)) if s == "majority" => Some(members / 2 + 1),
        Some(Bson::Int32(n)) if *n > 1 => usize::try_from(*n).ok(),
        Some(Bson::Int64(n)) if *n > 1 => usize::try_from(*n).ok(),
        Some(Bson::Double(n)) if *n > 1.0 => Some(*n as usize),
        _ => None,
    }
}

/// `wtimeout` in milliseconds (0 or absent: wait as long as it takes).
fn wtimeout(write_concern: &Document) -> Option<Duration> {
    let ms = match write_concern.get("wtimeout") {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    };
    (ms > 0).then(|| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// How long after a write on the primary it is on `required` members: the primary has it at
/// once, an answering secondary after its lag, a silent one never (`None`).
fn time_to_replicate(lags: &[Option<Duration>], required: usize) -> Option<Duration> {
    let mut ready: Vec<Duration> = lags.iter().flatten().copied().collect();
    ready.sort();
    // The primary counts for one.
    match required.checked_sub(2) {
        None => Some(Duration::ZERO),
        Some(k) => ready.get(k).copied(),
    }
}

/// Waits as `writeConcern` asks after a write on `primary`; returns the `writeConcernError`
/// mongod would attach when `wtimeout` expired first (code 64). `lags` has one entry per
/// secondary: its lag, or `None` when it does not answer.
pub(crate) async fn await_write_concern(
    write_concern: &Document,
    lags: &[Option<Duration>],
) -> Option<Document> {
    let required = required(write_concern, lags.len() + 1)?;
    let needed = time_to_replicate(lags, required);
    match (needed, wtimeout(write_concern)) {
        (Some(d), Some(limit)) if d <= limit => {
            tokio::time::sleep(d).await;
            None
        }
        (Some(d), None) => {
            tokio::time::sleep(d).await;
            None
        }
        (None, None) => std::future::pending().await,
        (_, Some(limit)) => {
            tokio::time::sleep(limit).await;
            Some(doc! {
                "code": codes::WRITE_CONCERN_TIMEOUT,
                "codeName": codes::name(codes::WRITE_CONCERN_TIMEOUT),
                "errmsg": "waiting for replication timed out",
                "errInfo": {"wtimeout": true, "writeConcern": write_concern.clone()},
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn majority_needs_the_fastest_secondaries() {
        let wc = doc! {"w": "majority"};
        // Three members: the primary and one secondary make a majority.
        assert_eq!(required(&wc, 3), Some(2));
        assert_eq!(required(&doc! {"w": 1}, 3), None);
        assert_eq!(required(&doc! {"w": 3}, 3), Some(3));
        let lags = [Some(50 * MS), Some(10 * MS)];
        assert_eq!(time_to_replicate(&lags, 2), Some(10 * MS));
        assert_eq!(time_to_replicate(&lags, 3), Some(50 * MS));
        assert_eq!(
            time_to_replicate(&[None, Some(MS)], 3),
            None,
            "one is silent"
        );
        assert_eq!(time_to_replicate(&[], 1), Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn wtimeout_expiring_first_is_write_concern_error_64() {
        let wc = doc! {"w": "majority", "wtimeout": 100};
        let slow = [Some(Duration::from_secs(5)), Some(Duration::from_secs(5))];
        let started = Instant::now();
        let wce = await_write_concern(&wc, &slow).await.unwrap();
        assert_eq!(wce.get_i32("code").unwrap(), 64);
        assert_eq!(started.elapsed(), 100 * MS, "waited exactly wtimeout");
        let fast = [Some(20 * MS), Some(Duration::from_secs(5))];
        assert!(await_write_concern(&wc, &fast).await.is_none());
        assert!(await_write_concern(&doc! {"w": 1}, &slow).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_member_sees_writes_after_its_lag() {
        let mut storage = Storage::default();
        let ts = |increment| Timestamp { time: 7, increment };
        let rep = Replication::new(vec![Duration::ZERO, 100 * MS], &storage, ts(1));
        assert!(rep.view(0).is_none(), "member 0 does not lag");
        storage.insert("db", "c", doc! {"_id": 1}).unwrap();
        rep.record_write(&storage, ts(2));
        let stale = rep.view(1).unwrap();
        assert!(stale.collection("db", "c").is_none());
        assert_eq!(rep.caught_up_at(1, ts(1)), None, "already applied");
        let due = rep.caught_up_at(1, ts(2)).unwrap();
        assert_eq!(due - Instant::now(), 100 * MS);
        assert_eq!(
            rep.caught_up_at(1, ts(9)),
            Some(due),
            "the last write it knows of"
        );
        assert_eq!(rep.caught_up_at(0, ts(2)), None, "member 0 does not lag");
        tokio::time::advance(100 * MS).await;
        let fresh = rep.view(1).unwrap();
        assert!(fresh.collection("db", "c").is_some());
        assert_eq!(rep.caught_up_at(1, ts(2)), None);
    }
}
