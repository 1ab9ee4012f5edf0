//! The demo's offline-first client: a keel-sync client (its own `Keel`, like a second app)
//! that keeps writing through every fault — each write durable on local disk at once — and
//! whose queue must drain once the deployment is healed. The check proves every acknowledged
//! local write reached the server exactly once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_sync::{Changes, Store, SyncClient, SyncedCollection};
use mongodb::bson::{Document, doc};
use mongokeel::Keel;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The collection the sync client writes, in the demo's database.
const COLLECTION: &str = "sync_counters";
/// Counter documents; each local write is a `$inc` of one of them.
const COUNTERS: usize = 4;
/// One local write this often.
const EVERY: Duration = Duration::from_millis(40);
/// How long the queue may take to drain after the deployment is healed.
const DRAIN_WITHIN: Duration = Duration::from_secs(30);

/// What the check found: writes acknowledged locally, and how many of them are not on the
/// server or are there more than once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncProof {
    /// Local writes that returned `Ok` (durable on local disk).
    pub(crate) acked: u64,
    /// Acknowledged writes not on the server (a queue that did not drain counts here).
    pub(crate) missing: u64,
    /// Writes on the server more often than they were acknowledged.
    pub(crate) duplicated: u64,
}

impl SyncProof {
    /// Whether every acknowledged write is on the server exactly once.
    pub(crate) fn holds(&self) -> bool {
        self.missing == 0 && self.duplicated == 0
    }
}

/// The running sync client and its writer.
pub(crate) struct SyncDemo {
    keel: Keel,
    client: SyncClient,
    database: String,
    /// Acknowledged writes per counter (its insert included).
    acked: Arc<Vec<AtomicU64>>,
    writer: JoinHandle<()>,
    dir: PathBuf,
}

impl SyncDemo {
    /// Opens a fresh local store and starts writing until `stopped` turns true.
    pub(crate) fn start(
        keel: Keel,
        database: &str,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("keel-demo-sync-{}", std::process::id()));
        // A directory left by an earlier run with the same pid holds another run's queue.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "cannot create the sync client's directory {}: {e}.",
                dir.display()
            )
        })?;
        let store = Store::open(dir.join("demo.keel-sync")).map_err(|e| e.to_string())?;
        let client = SyncClient::builder(keel.clone(), store)
            .build()
            .map_err(|e| e.to_string())?;
        let counters: SyncedCollection<Document> =
            client.collection(database, COLLECTION).subscribe(doc! {});
        let acked: Arc<Vec<AtomicU64>> =
            Arc::new((0..COUNTERS).map(|_| AtomicU64::new(0)).collect());
        let writer = {
            let acked = Arc::clone(&acked);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(EVERY);
                for k in 0..COUNTERS {
                    if counters
                        .insert(doc! { "_id": k as i64, "n": 0_i64 })
                        .await
                        .is_ok()
                    {
                        acked[k].fetch_add(1, Ordering::Relaxed);
                    }
                }
                let mut next = 0;
                while !*stopped.borrow_and_update() {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stopped.changed() => break,
                    }
                    let k = next % COUNTERS;
                    next += 1;
                    if counters
                        .update(k as i64, Changes::new().inc("n", 1))
                        .await
                        .is_ok()
                    {
                        acked[k].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        Ok(Self {
            keel,
            client,
            database: database.to_owned(),
            acked,
            writer,
            dir,
        })
    }

    /// Waits for the writer to stop and the queue to drain, then checks the server.
    pub(crate) async fn finish(self) -> Result<SyncProof, String> {
        let _ = self.writer.await;
        let mut status = self.client.status();
        // A queue that does not drain in time shows in the proof as missing writes.
        let _ = tokio::time::timeout(DRAIN_WITHIN, status.wait_for(|s| s.pending == 0)).await;
        let (database, collection) = (self.database.clone(), COLLECTION.to_owned());
        let on_server: Vec<Document> = self
            .keel
            .run(keel_core::Operation::read(
                "keel_demo.sync_check",
                move |client: mongodb::Client| {
                    let coll = client
                        .database(&database)
                        .collection::<Document>(&collection);
                    async move {
                        let mut cursor = coll.find(doc! {}).await?;
                        let mut docs = Vec::new();
                        while cursor.advance().await? {
                            docs.push(cursor.deserialize_current()?);
                        }
                        Ok(docs)
                    }
                },
            ))
            .await
            .map_err(|e| format!("cannot read the sync client's documents back: {e}."))?;
        let mut proof = SyncProof::default();
        for (k, acked) in self.acked.iter().enumerate() {
            let acked = acked.load(Ordering::Relaxed);
            proof.acked += acked;
            let stored = on_server
                .iter()
                .find(|d| d.get_i64("_id").ok() == Some(k as i64))
                // The insert counts one, each `$inc` one more.
                .map_or(0, |d| {
                    1 + d.get_i64("n").map_or(0, |n| u64::try_from(n).unwrap_or(0))
                });
            proof.missing += acked.saturating_sub(stored);
            proof.duplicated += stored.saturating_sub(acked);
        }
        drop(self.client);
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(proof)
    }
}
