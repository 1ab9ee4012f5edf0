//! `SyncClient`: the handle an app keeps: its builder, the background sync task, status,
//! conflicts and the quarantine.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use keel_retry::{Backoff, BackoffConfig};
use mongodb::bson::{Bson, Document};
use mongokeel::Keel;
use tokio::sync::{Notify, broadcast, watch};

pub use crate::download::{DownloadInfo, DownloadMode};
use crate::{
    ConflictPolicy, ConflictRecord, DeleteRule, Operation, OperationKind, QuarantinedOperation,
    Result, Store, SyncError,
    collection::CollectionBuilder,
    hlc::wall_ms,
    operation::DocKey,
    state::State,
    status::{Connectivity, SyncStatus, from_ms, record_metrics},
    store::{META_HLC, META_NEXT_SEQ, Mutation},
};

/// Per-collection conflict settings.
#[derive(Clone, Debug, Default)]
pub(crate) struct CollectionSettings {
    pub(crate) policy: ConflictPolicy,
    pub(crate) delete_rule: DeleteRule,
}

/// A local change, as sent to `watch()` streams (the document's view after the change).
#[derive(Clone, Debug)]
pub(crate) struct ViewChange {
    pub(crate) ns: String,
    pub(crate) id: Bson,
    pub(crate) doc: Option<Document>,
}

pub(crate) struct Inner {
    pub(crate) keel: Keel,
    pub(crate) store: Store,
    pub(crate) state: Mutex<State>,
    pub(crate) settings: Mutex<HashMap<String, CollectionSettings>>,
    pub(crate) subscriptions: Mutex<HashMap<String, Document>>,
    /// Shared with the background task, which waits on it without keeping the client alive.
    pub(crate) wake: Arc<Notify>,
    pub(crate) status: watch::Sender<SyncStatus>,
    pub(crate) changes: broadcast::Sender<ViewChange>,
    pub(crate) conflicts: broadcast::Sender<ConflictRecord>,
    pub(crate) backoff: Backoff,
    pub(crate) poll_interval: Duration,
    pub(crate) syncing: std::sync::atomic::AtomicBool,
    /// Whether downloads use change streams where the server has them.
    pub(crate) change_streams: bool,
    /// Collections to read again in full (a change stream reported a gap).
    pub(crate) resync: Mutex<HashSet<String>>,
    /// What each subscribed collection's download is doing.
    pub(crate) downloads: Mutex<HashMap<String, DownloadInfo>>,
    /// Dropped with the client: the background task ends at once (it may wait for nothing
    /// else when every download is a change stream).
    pub(crate) alive: watch::Sender<()>,
    /// Upload acknowledgements committed but not yet awaited (see `upload::flush_acks`).
    pub(crate) acks: Mutex<Vec<crate::store::Durable>>,
    /// Whether uploads use transactions: `None` until the deployment was asked (`hello`).
    pub(crate) transactions: Mutex<Option<bool>>,
    /// The session of an upload transaction whose end is not known yet (see `txn_session`).
    pub(crate) txn_session: crate::txn_session::Recorded,
    /// The app's name: the `sync:{app}` component and the `app` label of every metric.
    pub(crate) app: String,
}

/// An offline-first sync client: optimistic local writes, a durable queue uploaded exactly once
/// when the database is reachable, and server changes downloaded into the local replica.
///
/// ```no_run
/// # async fn run(keel: mongokeel::Keel) -> Result<(), keel_sync::SyncError> {
/// use keel_sync::{Changes, Store, SyncClient};
/// use mongodb::bson::{doc, Document};
///
/// let client = SyncClient::builder(keel, Store::open("notes.keel-sync")?).build()?;
/// let notes = client.collection::<Document>("app", "notes").subscribe(doc! {});
/// notes.insert(doc! { "_id": 1, "text": "buy milk" }).await?; // durable locally, at once
/// notes.update(1, Changes::new().set("done", true)).await?;
/// println!("{}", *client.status().borrow());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SyncClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient")
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SyncClient`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SyncClientBuilder {
    keel: Keel,
    store: Store,
    backoff: BackoffConfig,
    poll_interval: Duration,
    change_streams: bool,
    app: Option<String>,
    max_undrained: Duration,
    transactions: bool,
}

impl SyncClientBuilder {
    /// Whether uploads use multi-document transactions where the deployment supports them (a
    /// replica set or mongos of MongoDB 4.0 / 4.2 or later, read from `hello` once; default
    /// `true`): the queue's next operations are then applied all or none, conflicts included.
    /// Elsewhere, or with `false`, the transaction-free scheme of the README. Both apply every
    /// operation exactly once.
    pub fn transactions(mut self, enabled: bool) -> Self {
        self.transactions = enabled;
        self
    }

    /// The backoff between failed upload rounds (keel-retry's; default 100 ms doubling to 2 s
    /// with full jitter, capped here at 30 s by default).
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// How often server changes are polled while connected (default 1 s), for the collections
    /// that are polled (see [`change_streams`](Self::change_streams)).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Whether server changes come through a change stream per subscribed collection (default
    /// `true`; its checkpoint is kept in the store). Where the server has none (a standalone),
    /// the client polls by itself; `false` always polls.
    pub fn change_streams(mut self, enabled: bool) -> Self {
        self.change_streams = enabled;
        self
    }

    /// The app's name in the keel-health component `sync:{app}` (default: the store file's
    /// name without its extension).
    pub fn app_name(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// How long the queue may stay non-empty before the health component `sync:{app}` is
    /// degraded (default 5 min; the component is also degraded while operations are
    /// quarantined).
    pub fn max_undrained(mut self, limit: Duration) -> Self {
        self.max_undrained = limit;
        self
    }

    /// Loads the store and starts the background sync task (on the current tokio runtime),
    /// and registers the client with `keel.health()` as the component `sync:{app}`.
    pub fn build(self) -> Result<SyncClient> {
        let backoff =
            Backoff::new(self.backoff).map_err(|e| SyncError::Config(format!("backoff: {e}")))?;
        if self.poll_interval.is_zero() {
            return Err(SyncError::Config(
                "the poll interval must be longer than zero".into(),
            ));
        }
        let state = State::from_loaded(self.store.load()?);
        let txn_session = crate::txn_session::Recorded::load(&self.store)?;
        let app = self.app.unwrap_or_else(|| {
            self.store
                .path()
                .file_stem()
                .map_or_else(|| "app".to_owned(), |s| s.to_string_lossy().into_owned())
        });
        let (status, _) = watch::channel(SyncStatus {
            connectivity: Connectivity::Offline,
            pending: 0,
            oldest_pending_since: None,
            last_sync: None,
            quarantined: 0,
            conflicts: 0,
        });
        let client = SyncClient {
            inner: Arc::new(Inner {
                keel: self.keel,
                store: self.store,
                state: Mutex::new(state),
                settings: Mutex::new(HashMap::new()),
                subscriptions: Mutex::new(HashMap::new()),
                wake: Arc::new(Notify::new()),
                status,
                changes: broadcast::channel(1024).0,
                conflicts: broadcast::channel(256).0,
                backoff,
                poll_interval: self.poll_interval,
                syncing: std::sync::atomic::AtomicBool::new(false),
                change_streams: self.change_streams,
                resync: Mutex::new(HashSet::new()),
                downloads: Mutex::new(HashMap::new()),
                alive: watch::channel(()).0,
                acks: Mutex::new(Vec::new()),
                transactions: Mutex::new(if self.transactions { None } else { Some(false) }),
                txn_session,
                app: app.clone(),
            }),
        };
        client.inner.publish_status();
        let reporter = client.inner.keel.health().component(format!("sync:{app}"));
        tokio::spawn(crate::health::run(
            client.status(),
            reporter,
            self.max_undrained,
        ));
        tokio::spawn(crate::upload::run(Arc::downgrade(&client.inner)));
        Ok(client)
    }
}

impl SyncClient {
    /// Starts building a client over `keel` and `store`.
    pub fn builder(keel: Keel, store: Store) -> SyncClientBuilder {
        SyncClientBuilder {
            keel,
            store,
            backoff: BackoffConfig {
                cap: Duration::from_secs(30),
                ..BackoffConfig::default()
            },
            poll_interval: Duration::from_secs(1),
            change_streams: true,
            app: None,
            max_undrained: Duration::from_secs(300),
            transactions: true,
        }
    }

    /// Whether uploads run in transactions: `None` until the client first reached the
    /// deployment and asked whether it supports them (see
    /// [`SyncClientBuilder::transactions`]).
    pub fn uses_transactions(&self) -> Option<bool> {
        *self
            .inner
            .transactions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A synced collection; choose its conflict policy, then `subscribe`.
    pub fn collection<T>(&self, db: &str, coll: &str) -> CollectionBuilder<T> {
        CollectionBuilder::new(self.clone(), db, coll)
    }

    /// The status, on a watch: online/offline/syncing, pending, quarantined, conflicts.
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.inner.status.subscribe()
    }

    /// Every conflict from now on, with its outcome (the log keeps all: [`Store::conflicts`]).
    pub fn conflicts(&self) -> broadcast::Receiver<ConflictRecord> {
        self.inner.conflicts.subscribe()
    }

    /// What the download of each subscribed collection is doing (change stream or polling),
    /// once it started.
    pub fn downloads(&self) -> Vec<DownloadInfo> {
        let mut all: Vec<DownloadInfo> = self
            .inner
            .downloads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        all
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The operations in quarantine.
    pub fn quarantined(&self) -> Vec<QuarantinedOperation> {
        self.inner.lock().quarantine.values().cloned().collect()
    }

    /// Queues a quarantined operation again, at the end of the queue with a new sequence number
    /// (its place in the order was given up when it was refused).
    pub async fn retry_quarantined(&self, seq: u64) -> Result<u64> {
        let (durable, new_seq, key, quarantined) = {
            let mut state = self.inner.lock();
            let Some(quarantined) = state.quarantine.get(&seq).cloned() else {
                return Err(SyncError::NotQuarantined(seq));
            };
            let mut op = quarantined.operation.clone();
            op.seq = state.next_seq;
            op.op_id = uuid::Uuid::now_v7();
            let new_seq = op.seq;
            let key = op.key()?;
            let mutations = vec![
                Mutation::RemoveQuarantine(seq),
                Mutation::PutOp(new_seq, op.to_bytes()?),
                Mutation::PutMeta(META_NEXT_SEQ, (new_seq + 1).to_be_bytes().to_vec()),
            ];
            let based_on = state.not_yet_durable(std::slice::from_ref(&key));
            let durable = self.inner.store.submit_based_on(mutations, based_on)?;
            state.next_seq = new_seq + 1;
            state.quarantine.remove(&seq);
            state.push_op(op);
            state.in_flight.insert(new_seq);
            self.inner.view_changed(&mut state, &key);
            (durable, new_seq, key, quarantined)
        };
        self.inner.publish_status();
        let committed = durable.wait().await;
        {
            let mut state = self.inner.lock();
            state.in_flight.remove(&new_seq);
            if committed.is_err() {
                // Nothing of it was stored: on disk it is still quarantined under its old
                // number, and so it is again in memory.
                state.remove_op(new_seq);
                state.quarantine.insert(seq, quarantined);
                self.inner.view_changed(&mut state, &key);
            }
        }
        self.inner.publish_status();
        committed?;
        self.inner.wake.notify_one();
        Ok(new_seq)
    }

    /// Drops a quarantined operation for good.
    pub async fn discard_quarantined(&self, seq: u64) -> Result<()> {
        let (durable, quarantined) = {
            let mut state = self.inner.lock();
            let Some(quarantined) = state.quarantine.remove(&seq) else {
                return Err(SyncError::NotQuarantined(seq));
            };
            match self
                .inner
                .store
                .submit(vec![Mutation::RemoveQuarantine(seq)])
            {
                Ok(durable) => (durable, quarantined),
                Err(e) => {
                    state.quarantine.insert(seq, quarantined);
                    return Err(e);
                }
            }
        };
        self.inner.publish_status();
        if let Err(error) = durable.wait().await {
            // Still quarantined on disk, so again in memory.
            self.inner.lock().quarantine.insert(seq, quarantined);
            self.inner.publish_status();
            return Err(error);
        }
        Ok(())
    }

    /// Asks the background task to sync now (it also does by itself on every change).
    pub fn sync_now(&self) {
        self.inner.wake.notify_one();
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Updates what the download of `ns` reports.
    pub(crate) fn note_download(&self, ns: &str, update: impl FnOnce(&mut DownloadInfo)) {
        let mut downloads = self
            .downloads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let info = downloads
            .entry(ns.to_owned())
            .or_insert_with(|| DownloadInfo {
                namespace: ns.to_owned(),
                mode: DownloadMode::Polling,
                full_reads: 0,
                events: 0,
                checkpointed_at: None,
                polling_because: None,
            });
        update(info);
    }

    /// Asks the background task to read `ns` again in full.
    pub(crate) fn request_resync(&self, ns: &str) {
        self.resync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(ns.to_owned());
        self.wake.notify_one();
    }

    pub(crate) fn settings_for(&self, ns: &str) -> CollectionSettings {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(ns)
            .cloned()
            .unwrap_or_default()
    }

    /// Recomputes a document's view and tells the watchers when it changed.
    pub(crate) fn view_changed(&self, state: &mut State, key: &DocKey) {
        if state.recompute(key) {
            self.announce(state, key);
        }
    }

    /// Tells the watchers the document's view is now what `state` holds.
    fn announce(&self, state: &State, key: &DocKey) {
        let id = mongodb::bson::from_slice::<Document>(&key.id)
            .ok()
            .and_then(|mut d| d.remove("_id"))
            .unwrap_or(Bson::Null);
        let _ = self.changes.send(ViewChange {
            ns: key.ns.clone(),
            id,
            doc: state.view.get(key).cloned(),
        });
    }

    pub(crate) fn publish_status(&self) {
        let status = {
            let state = self.lock();
            let connected = self.keel.state() == keel_pool_core::ConnectionState::Connected;
            let syncing = self.syncing.load(std::sync::atomic::Ordering::Relaxed);
            SyncStatus {
                connectivity: match (connected, syncing || !state.queue.is_empty()) {
                    (false, _) => Connectivity::Offline,
                    (true, true) => Connectivity::Syncing,
                    (true, false) => Connectivity::Online,
                },
                pending: state.queue.len(),
                oldest_pending_since: state.oldest_pending_ms().map(from_ms),
                last_sync: state.last_sync_ms.map(from_ms),
                quarantined: state.quarantine.len(),
                conflicts: state.conflicts,
            }
        };
        record_metrics(&self.app, &status);
        self.status.send_if_modified(|old| {
            let changed = *old != status;
            *old = status;
            changed
        });
    }

    /// Applies a local write to the view at once and queues it; resolves when it is durable.
    pub(crate) async fn enqueue(
        &self,
        ns: &str,
        id: Bson,
        kind: OperationKind,
    ) -> Result<uuid::Uuid> {
        let mut ids = self.enqueue_many(ns, vec![(id, kind)]).await?;
        ids.pop().ok_or(SyncError::StoreClosed)
    }

    /// Applies writes to the view at once and queues them in one commit (one fsync for all:
    /// all of them are durable, or, when the commit fails, none is and they are taken out of
    /// the view and the queue again; their sequence numbers are not reused). Each write is
    /// checked against the view with the writes before it applied.
    pub(crate) async fn enqueue_many(
        &self,
        ns: &str,
        writes: Vec<(Bson, OperationKind)>,
    ) -> Result<Vec<uuid::Uuid>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let (durable, op_ids, queued) = {
            let mut state = self.lock();
            // Check every write first, so a refused one leaves nothing behind.
            let mut present: HashMap<DocKey, bool> = HashMap::new();
            let mut keys = Vec::with_capacity(writes.len());
            for (id, kind) in &writes {
                let key = DocKey::new(ns, id)?;
                let exists = *present
                    .entry(key.clone())
                    .or_insert_with(|| state.view.contains_key(&key));
                match (kind, exists) {
                    (OperationKind::Insert(_), true) => return Err(SyncError::AlreadyExists),
                    (OperationKind::Insert(_), false) => {}
                    (_, false) => return Err(SyncError::NotFound),
                    (_, true) => {}
                }
                present.insert(key.clone(), !matches!(kind, OperationKind::Delete));
                keys.push(key);
            }
            let first_seq = state.next_seq;
            let mut mutations = Vec::with_capacity(writes.len() + 2);
            let mut ops = Vec::with_capacity(writes.len());
            let mut hlc = 0;
            for (((id, kind), key), seq) in writes.into_iter().zip(&keys).zip(first_seq..) {
                let replica = state.replica.get(key);
                let base_version = replica.map(|r| r.record.v);
                let base = replica.and_then(|r| r.live()).cloned();
                hlc = state.hlc.now();
                let op = Operation {
                    seq,
                    client_id: self.store.client_id().to_owned(),
                    op_id: uuid::Uuid::now_v7(),
                    ns: ns.to_owned(),
                    doc_id: id,
                    base_version,
                    base,
                    kind,
                    hlc,
                    enqueued_at_ms: i64::try_from(wall_ms()).unwrap_or(i64::MAX),
                };
                mutations.push(Mutation::PutOp(seq, op.to_bytes()?));
                ops.push(op);
            }
            let next_seq = first_seq + ops.len() as u64;
            mutations.push(Mutation::PutMeta(
                META_NEXT_SEQ,
                next_seq.to_be_bytes().to_vec(),
            ));
            mutations.push(Mutation::PutMeta(META_HLC, hlc.to_be_bytes().to_vec()));
            // Writes computed on queued writes whose commit is still running: if one of those
            // fails, these fail with it (they were made on a state that never became durable).
            let based_on = state.not_yet_durable(&keys);
            // Submitted under the lock: the commit order is the sequence order.
            let durable = self.store.submit_based_on(mutations, based_on)?;
            state.next_seq = next_seq;
            let op_ids: Vec<uuid::Uuid> = ops.iter().map(|op| op.op_id).collect();
            let queued: Vec<(u64, DocKey)> = ops.iter().map(|op| op.seq).zip(keys).collect();
            for op in ops {
                state.in_flight.insert(op.seq);
                state.push_op(op);
            }
            // The view already is the replica with every earlier pending operation applied:
            // applying the new ones on it is the same as recomputing the document, without
            // re-applying all of its pending operations for every write (quadratic in a long
            // offline queue).
            let mut changed = Vec::new();
            for (seq, key) in &queued {
                if state.apply_on_view(key, *seq) && !changed.contains(key) {
                    changed.push(key.clone());
                }
            }
            for key in &changed {
                self.announce(&state, key);
            }
            (durable, op_ids, queued)
        };
        self.publish_status();
        let committed = durable.wait().await;
        {
            let mut state = self.lock();
            for (seq, _) in &queued {
                state.in_flight.remove(seq);
            }
        }
        if let Err(error) = committed {
            self.roll_back(&queued);
            return Err(error);
        }
        // Only a durable operation is uploaded.
        self.wake.notify_one();
        Ok(op_ids)
    }

    /// Takes writes whose commit failed out of the queue and the view (the upload task never
    /// sends them: they were not durable, so they were never acknowledged).
    fn roll_back(&self, queued: &[(u64, DocKey)]) {
        {
            let mut state = self.lock();
            for (seq, _) in queued {
                state.remove_op(*seq);
            }
            let keys: HashSet<&DocKey> = queued.iter().map(|(_, key)| key).collect();
            for key in keys {
                self.view_changed(&mut state, key);
            }
        }
        self.publish_status();
    }
}
