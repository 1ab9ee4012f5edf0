//! The demo's change-stream consumer: a keel-change-streams consumer on the workload's
//! collection, next to it through all its faults, checkpointing to a file; it is killed and
//! restarted from that file halfway through the run, and the report proves it saw every
//! acknowledged write at least once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keel_change_streams::{
    ChangeConsumer, ChangeEvent, CommitPolicy, ConsumerStatus, FileCheckpointStore, RunningConsumer,
};
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

use super::report::{thousands, times};
use super::stats::{Latency, human};
use super::workload::COLLECTION;

/// The consumer's name (its checkpoint file's name).
const NAME: &str = "keel-demo-stream";
/// How long the consumer may take to open its stream before the workload starts anyway.
const OPEN_WAIT: Duration = Duration::from_secs(10);
/// How many missed writes the report names.
const MISSING_SHOWN: usize = 5;
/// How long the consumer may take to catch up after the workload stopped.
const CATCH_UP: Duration = Duration::from_secs(10);

/// What the handler saw, shared with the status line and the report.
#[derive(Default)]
struct Seen {
    /// Deliveries per document `_id`.
    keys: Mutex<HashMap<String, u32>>,
    /// Write-to-handler delays in µs (the event's `wallTime` to the handler's call).
    delays: Mutex<Vec<u32>>,
    /// The last event's delay in µs: the consumer's lag on the status line.
    last_delay: AtomicU64,
}

/// The consumer next to the workload.
pub(crate) struct StreamWatch {
    keel: Keel,
    database: String,
    dir: PathBuf,
    /// One store for the consumer and its restarted successor: its lock makes the successor
    /// load only after a commit the killed one had in flight.
    store: FileCheckpointStore,
    seen: Arc<Seen>,
    running: Mutex<Option<RunningConsumer>>,
    /// Resumes of consumers already stopped (the restart's predecessor).
    resumes_before: AtomicU64,
    restarts: AtomicU64,
    /// Why the consumer does not run, when it cannot (a standalone server has no streams).
    failed: Mutex<Option<String>>,
}

/// The report's stream section: every acknowledged write seen at least once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamProof {
    /// Acknowledged writes the consumer saw at least once.
    pub(crate) seen: u64,
    /// Acknowledged writes it never saw.
    pub(crate) missing: u64,
    /// The first few of them (`_id`, and the oplog entry that holds it when the server shows
    /// its oplog), so a run that missed one says which.
    pub(crate) missing_ids: Vec<String>,
    /// Deliveries beyond the first (at least once: after the restart, and after resumes).
    pub(crate) redelivered: u64,
    /// The consumer's own resumes.
    pub(crate) resumes: u64,
    /// Times it was killed and restarted from its checkpoint file.
    pub(crate) restarts: u64,
    /// Write-to-handler latency of first deliveries (the event's `wallTime` to the handler).
    pub(crate) latency: Latency,
    /// Why the consumer did not run, when it did not.
    pub(crate) not_run: Option<String>,
    /// Why the consumer stopped before the end, when it did.
    pub(crate) stopped: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn micros_since(wall: mongodb::bson::DateTime) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let then = wall.timestamp_millis().saturating_mul(1000);
    u32::try_from(now.saturating_sub(then).max(0)).unwrap_or(u32::MAX)
}

impl StreamWatch {
    /// Starts the consumer on `database.events` and waits (briefly) until its stream is open,
    /// so it sees the workload's first write.
    pub(crate) async fn start(keel: Keel, database: &str) -> Arc<Self> {
        let dir = std::env::temp_dir().join(format!(
            "keel-demo-stream-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let watch = Arc::new(Self {
            keel,
            database: database.to_owned(),
            store: FileCheckpointStore::new(&dir),
            dir,
            seen: Arc::default(),
            running: Mutex::new(None),
            resumes_before: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            failed: Mutex::new(None),
        });
        watch.spawn().await;
        watch
    }

    async fn spawn(&self) {
        let seen = Arc::clone(&self.seen);
        let consumer = ChangeConsumer::<Document>::builder(self.keel.clone(), NAME)
            .collection(&self.database, COLLECTION)
            .pipeline([doc! {"$match": {"operationType": "insert"}}])
            .max_await_time(Duration::from_millis(200))
            .store(self.store.clone())
            // Committed twice a second: the crash halfway shows events handled after the last
            // commit coming again (at least once), without an fsync per batch.
            .commit_policy(CommitPolicy::Every(Duration::from_millis(500)))
            .handler(move |event: ChangeEvent<Document>| {
                let seen = Arc::clone(&seen);
                async move {
                    let first = match event
                        .document_key
                        .as_ref()
                        .and_then(|k| k.get_str("_id").ok())
                    {
                        Some(key) => {
                            let mut keys = lock(&seen.keys);
                            let n = keys.entry(key.to_owned()).or_default();
                            *n += 1;
                            *n == 1
                        }
                        None => false,
                    };
                    // Latency of first deliveries only: a redelivery is old by design.
                    if first && let Ok(wall) = event.raw.get_datetime("wallTime") {
                        let delay = micros_since(*wall);
                        seen.last_delay.store(u64::from(delay), Ordering::Relaxed);
                        lock(&seen.delays).push(delay);
                    }
                    Ok::<_, String>(())
                }
            })
            .spawn();
        let consumer = match consumer {
            Ok(consumer) => consumer,
            Err(error) => {
                *lock(&self.failed) = Some(error.to_string());
                return;
            }
        };
        let mut status = consumer.status();
        let opened = tokio::time::timeout(
            OPEN_WAIT,
            status.wait_for(|s| {
                matches!(s, ConsumerStatus::Running | ConsumerStatus::Stopped { .. })
            }),
        )
        .await;
        // Only a first start that fails means "no streams here" (a standalone server); a
        // restarted consumer that stops is a failure the report shows.
        if let Ok(Ok(state)) = opened
            && let ConsumerStatus::Stopped { error } = &*state
            && self.restarts.load(Ordering::Relaxed) == 0
        {
            *lock(&self.failed) = Some(error.clone().unwrap_or_else(|| "it stopped".into()));
        }
        *lock(&self.running) = Some(consumer);
    }

    /// Kills the consumer without a commit (what a crash does) and starts a new one from the
    /// checkpoint file: what was handled after its last commit comes again.
    pub(crate) async fn crash_and_restart(&self) -> Option<String> {
        let old = lock(&self.running).take()?;
        if lock(&self.failed).is_some() {
            *lock(&self.running) = Some(old);
            return None;
        }
        self.resumes_before
            .fetch_add(old.stats().resumes(), Ordering::Relaxed);
        old.abort();
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.spawn().await;
        Some("change-stream consumer killed and restarted from its checkpoint file".to_owned())
    }

    /// The status line's part: the consumer's lag (the last event's write-to-handler delay),
    /// or what it is doing when it is not running.
    pub(crate) fn status(&self) -> String {
        if lock(&self.failed).is_some() {
            return "stream off".to_owned();
        }
        let state = lock(&self.running)
            .as_ref()
            .map(|c| c.status().borrow().clone());
        match state {
            Some(ConsumerStatus::Running) | None => {
                let lag = Duration::from_micros(self.seen.last_delay.load(Ordering::Relaxed));
                format!("stream lag {}", human(lag))
            }
            Some(ConsumerStatus::Resuming { .. }) => "stream resuming".to_owned(),
            Some(_) => "stream starting".to_owned(),
        }
    }

    /// The oplog entry that inserted `id`, as `op ts`, when the server lets the demo read
    /// `local.oplog.rs`.
    async fn oplog_entry(&self, id: &str) -> Option<String> {
        let ns = format!("{}.{COLLECTION}", self.database);
        let filter = doc! {"ns": ns, "o._id": id};
        let found = self
            .keel
            .run(keel_core::Operation::read(
                "demo.oplog_lookup",
                move |client: mongodb::Client| {
                    let oplog = client.database("local").collection::<Document>("oplog.rs");
                    let filter = filter.clone();
                    async move { oplog.find_one(filter).await }
                },
            ))
            .await
            .ok()??;
        let op = found.get_str("op").unwrap_or("?").to_owned();
        let ts = found.get_timestamp("ts").map_or_else(
            |_| "?".to_owned(),
            |t| format!("{}.{}", t.time, t.increment),
        );
        Some(format!("{op} at {ts}"))
    }

    /// Waits until every key in `acknowledged` was seen (or the catch-up time is over), stops
    /// the consumer, removes its checkpoint file, and proves what it saw.
    pub(crate) async fn finish(&self, acknowledged: &[String]) -> StreamProof {
        let not_run = lock(&self.failed).clone();
        if not_run.is_none() {
            let _ = tokio::time::timeout(CATCH_UP, async {
                loop {
                    let all = {
                        let keys = lock(&self.seen.keys);
                        acknowledged.iter().all(|k| keys.contains_key(k))
                    };
                    if all {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
        }
        let consumer = lock(&self.running).take();
        let mut resumes = self.resumes_before.load(Ordering::Relaxed);
        let mut stopped = None;
        if let Some(consumer) = consumer {
            if let ConsumerStatus::Stopped { error } = &*consumer.status().borrow() {
                stopped = Some(error.clone().unwrap_or_else(|| "it stopped".into()));
            }
            resumes += consumer.stats().resumes();
            let _ = consumer.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let (seen, missed) = {
            let keys = lock(&self.seen.keys);
            let seen = acknowledged
                .iter()
                .filter(|k| keys.contains_key(k.as_str()))
                .count();
            let missed: Vec<String> = acknowledged
                .iter()
                .filter(|k| !keys.contains_key(k.as_str()))
                .take(MISSING_SHOWN)
                .cloned()
                .collect();
            (u64::try_from(seen).unwrap_or(u64::MAX), missed)
        };
        let mut missing_ids = Vec::with_capacity(missed.len());
        for id in missed {
            let entry = self.oplog_entry(&id).await;
            missing_ids.push(match entry {
                Some(entry) => format!("{id} (oplog: {entry})"),
                None => id,
            });
        }
        let keys = lock(&self.seen.keys);
        StreamProof {
            seen,
            missing_ids,
            missing: u64::try_from(acknowledged.len()).unwrap_or(u64::MAX) - seen,
            redelivered: keys.values().map(|n| u64::from(n.saturating_sub(1))).sum(),
            resumes,
            restarts: self.restarts.load(Ordering::Relaxed),
            latency: Latency::of(lock(&self.seen.delays).clone()),
            stopped: stopped.filter(|_| not_run.is_none()),
            not_run,
        }
    }
}

impl StreamProof {
    /// The report's lines on the change stream.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write;
        if let Some(reason) = &self.not_run {
            let _ = writeln!(out, "\n  Change stream: not run ({reason}).");
            return;
        }
        let _ = writeln!(
            out,
            "\n  Every acknowledged write, as a change-stream consumer saw it (at least once, \
             file checkpoint, killed and restarted {}, resumed {}):",
            times(self.restarts),
            times(self.resumes)
        );
        if let Some(reason) = &self.stopped {
            let _ = writeln!(out, "    the consumer stopped before the end: {reason}");
        }
        let row = |out: &mut String, label: &str, n: u64, note: &str| {
            let _ = writeln!(out, "    {label:<13}{:>9}  {note}", thousands(n));
        };
        row(out, "seen", self.seen, "delivered to the handler");
        row(
            out,
            "missing",
            self.missing,
            "acknowledged but never delivered",
        );
        if !self.missing_ids.is_empty() {
            let _ = writeln!(
                out,
                "                   first missed: {}",
                self.missing_ids.join(", ")
            );
        }
        row(
            out,
            "redelivered",
            self.redelivered,
            "delivered again after the restart or a resume (dedup by event_id)",
        );
        let _ = writeln!(
            out,
            "    write-to-handler p50 {} · p99 {}",
            human(self.latency.p50),
            human(self.latency.p99)
        );
    }

    /// The `result:` line's fields.
    pub(crate) fn fields(&self) -> String {
        format!(
            " stream_seen={} stream_missing={} stream_redelivered={}",
            self.seen, self.missing, self.redelivered
        )
    }

    /// Whether the consumer missed an acknowledged write.
    pub(crate) fn broken(&self) -> bool {
        self.not_run.is_none() && (self.missing > 0 || self.stopped.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_renders_its_fields_and_breaks_on_a_missing_write() {
        let proof = StreamProof {
            seen: 10,
            missing: 0,
            redelivered: 3,
            restarts: 1,
            ..StreamProof::default()
        };
        assert_eq!(
            proof.fields(),
            " stream_seen=10 stream_missing=0 stream_redelivered=3"
        );
        let mut out = String::new();
        proof.render(&mut out);
        assert!(
            out.contains("killed and restarted once, resumed never"),
            "{out}"
        );
        assert!(!proof.broken());
        let missing = StreamProof {
            missing: 1,
            missing_ids: vec!["w01-0000007 (oplog: i at 1796360358.1)".into()],
            ..proof.clone()
        };
        assert!(missing.broken());
        let mut out = String::new();
        missing.render(&mut out);
        assert!(
            out.contains("first missed: w01-0000007 (oplog: i at 1796360358.1)"),
            "{out}"
        );
        let stopped = StreamProof {
            stopped: Some("conflict".into()),
            ..proof
        };
        assert!(stopped.broken());
        let off = StreamProof {
            missing: 5,
            not_run: Some("standalone".into()),
            ..StreamProof::default()
        };
        assert!(!off.broken());
    }
}
