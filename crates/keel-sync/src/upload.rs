//! Upload: the background task that drains the queue in order, exactly once (the `_sync`
//! record scheme of the README), quarantines permanent rejections, and backs off between
//! failed rounds.

use std::sync::{Arc, Weak, atomic::Ordering};

use futures_util::{FutureExt as _, future::BoxFuture};
use keel_pool_core::ConnectionState;
use keel_retry::{JitterSource, ThreadRngJitter};
use mongodb::bson::{Document, doc};
use tokio::sync::watch;

use crate::{
    ConflictRecord, Operation, OperationKind, QuarantinedOperation,
    client::Inner,
    conflict::decide,
    download::{Downloads, split_ns},
    hlc::wall_ms,
    round_error::RoundError,
    server_record::ServerDoc,
    store::Mutation,
};

/// The background task: runs while the client exists.
pub(crate) async fn run(inner: Weak<Inner>) {
    let Some(connection) = inner.upgrade().map(|strong| strong.keel.subscribe()) else {
        return;
    };
    schedule(inner, connection, &mut SyncRounds::default()).await;
}

/// What one sync round does; the real one ([`SyncRounds`]) uploads the queue, then downloads.
pub(crate) trait Rounds {
    /// One round.
    fn round<'a>(&'a mut self, inner: &'a Arc<Inner>) -> BoxFuture<'a, Result<(), RoundError>>;
    /// Whether a collection is polled (then a round also runs every poll interval).
    fn polls(&self, inner: &Inner) -> bool;
}

#[derive(Default)]
struct SyncRounds {
    downloads: Downloads,
}

impl Rounds for SyncRounds {
    fn round<'a>(&'a mut self, inner: &'a Arc<Inner>) -> BoxFuture<'a, Result<(), RoundError>> {
        async move {
            upload_all(inner).await?;
            self.downloads.round(inner).await.map_err(RoundError::from)
        }
        .boxed()
    }

    fn polls(&self, inner: &Inner) -> bool {
        self.downloads.polls(inner)
    }
}

/// When rounds run: whenever `connection` is connected and something is to do (a local write
/// wakes it, the connection returns, a poll is due), and after a failed round again by itself,
/// after keel-retry's backoff — never only on the next local write.
pub(crate) async fn schedule(
    inner: Weak<Inner>,
    mut connection: watch::Receiver<ConnectionState>,
    rounds: &mut impl Rounds,
) {
    let Some(strong) = inner.upgrade() else {
        return;
    };
    let mut alive = strong.alive.subscribe();
    let poll_interval = strong.poll_interval;
    drop(strong);
    let mut failures = 0_u32;
    let mut previous_delay = std::time::Duration::ZERO;
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let connected = *connection.borrow_and_update() == ConnectionState::Connected;
        if connected {
            inner.syncing.store(true, Ordering::Relaxed);
            inner.publish_status();
            let round = rounds.round(&inner).await;
            inner.syncing.store(false, Ordering::Relaxed);
            inner.publish_status();
            match round {
                Ok(()) => failures = 0,
                Err(error) => {
                    metrics::counter!("keel_sync_upload_failures_total", "class" => error.class(), "app" => inner.app.clone())
                        .increment(1);
                    tracing::debug!(%error, class = error.class(), "keel-sync: sync round failed, backing off");
                    let delay =
                        inner
                            .backoff
                            .delay(failures, previous_delay, ThreadRngJitter.unit());
                    previous_delay = delay;
                    failures = failures.saturating_add(1);
                    drop(inner);
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
        } else {
            inner.publish_status();
        }
        let polls = rounds.polls(&inner);
        let wake = inner.wake.clone();
        drop(inner);
        tokio::select! {
            () = wake.notified() => {}
            changed = connection.changed() => if changed.is_err() { return; },
            _ = alive.changed() => return,
            () = tokio::time::sleep(poll_interval), if polls => {}
        }
    }
}

/// Uploads queue heads until the queue is empty or a round fails.
async fn upload_all(inner: &Arc<Inner>) -> Result<(), RoundError> {
    loop {
        // Many queued operations per round trip: in a transaction where the deployment has
        // them, else the no-conflict path (one conditional `update` command).
        let batched = match crate::upload_txn::supported(inner).await {
            Ok(true) => crate::upload_txn::upload_in_transaction(inner).await,
            Ok(false) => crate::upload_batch::upload_batch(inner).await,
            Err(error) => Err(error),
        };
        match batched {
            Ok(true) => continue,
            Ok(false) => {}
            Err(error) => {
                flush_acks(inner).await;
                return Err(error);
            }
        }
        let head = {
            let state = inner.lock();
            // The head waits for its commit (the writer wakes the task once it is durable).
            state
                .queue
                .values()
                .next()
                .filter(|op| !state.in_flight.contains(&op.seq))
                .cloned()
        };
        let Some(op) = head else {
            flush_acks(inner).await;
            return Ok(());
        };
        match upload_one(inner, &op).await {
            Ok(()) => metrics::counter!("keel_sync_uploaded_total", "app" => inner.app.clone())
                .increment(1),
            Err(ref error) if let Some(refused) = error.permanent() => {
                quarantine(inner, &op, refused).await;
            }
            Err(error) => {
                flush_acks(inner).await;
                return Err(error);
            }
        }
    }
}

async fn read_server(inner: &Inner, op: &Operation) -> Result<Option<ServerDoc>, keel_core::Error> {
    let (db, coll) = split_ns(&op.ns);
    let id = op.doc_id.clone();
    let found = inner
        .keel
        .run(keel_core::Operation::read(
            "keel_sync.upload_read",
            move |client: mongodb::Client| {
                let collection = client.database(&db).collection::<Document>(&coll);
                let filter = doc! { "_id": id.clone() };
                async move { collection.find_one(filter).await }
            },
        ))
        .await?;
    Ok(found.map(ServerDoc::split))
}

/// What a conditional write found.
enum Written {
    Done,
    /// The document changed (or appeared) since it was read: read again.
    Raced,
}

async fn write_server(
    inner: &Inner,
    op: &Operation,
    current: Option<&ServerDoc>,
    next: &ServerDoc,
) -> Result<Written, keel_core::Error> {
    let (db, coll) = split_ns(&op.ns);
    let full = next.join();
    match current {
        None => {
            // Repeating this is harmless: a second insert is a duplicate key, which reads again.
            let outcome = inner
                .keel
                .run(keel_core::Operation::write(
                    "keel_sync.upload_insert",
                    true,
                    move |client: mongodb::Client| {
                        let collection = client.database(&db).collection::<Document>(&coll);
                        let full = full.clone();
                        async move { collection.insert_one(full).await }
                    },
                ))
                .await;
            match outcome {
                Ok(_) => Ok(Written::Done),
                Err(e) if e.is_duplicate_key() => Ok(Written::Raced),
                Err(e) => Err(e),
            }
        }
        Some(current) => {
            let filter = current.unchanged_filter(&op.doc_id);
            // Conditional on the version read: a repeat after it applied matches nothing.
            let result = inner
                .keel
                .run(keel_core::Operation::write(
                    "keel_sync.upload_replace",
                    true,
                    move |client: mongodb::Client| {
                        let collection = client.database(&db).collection::<Document>(&coll);
                        let (filter, full) = (filter.clone(), full.clone());
                        async move { collection.replace_one(filter, full).await }
                    },
                ))
                .await?;
            Ok(if result.matched_count == 1 {
                Written::Done
            } else {
                Written::Raced
            })
        }
    }
}

/// When `server` (the document as read) carries `op`'s mark, the operation was applied before
/// (the ack was lost, or the process died after the write): acknowledges it and returns `true`.
pub(crate) async fn ack_if_applied(inner: &Inner, op: &Operation, server: &ServerDoc) -> bool {
    if server.record.applied_seq(&op.client_id) < Some(op.seq) {
        return false;
    }
    // When it is still the server's last write, it extends this client's own chain as if its
    // reply had come: the operations after it, based on the version before it, are no conflict.
    let still_last = server.record.op == op.op_id.to_string();
    // The write that landed was the last one tried: its conflict decision is the one the server
    // holds, and it is logged now (it was not when the reply was lost).
    let decided = inner.lock().decisions.remove(&op.seq);
    ack(inner, op, Some(server.clone()), decided, still_last).await;
    true
}

/// Applies one operation on the server exactly once, resolving a conflict when its base is
/// older than the server's version, then removes it from the queue.
pub(crate) async fn upload_one(inner: &Arc<Inner>, op: &Operation) -> Result<(), RoundError> {
    upload_one_from(inner, op, None).await
}

/// [`upload_one`], starting from `read` (the server's document as just read: `Some(None)`
/// when it is absent) instead of reading it first.
pub(crate) async fn upload_one_from(
    inner: &Arc<Inner>,
    op: &Operation,
    mut read: Option<Option<ServerDoc>>,
) -> Result<(), RoundError> {
    let settings = inner.settings_for(&op.ns);
    let mut duplicate_without_document = false;
    loop {
        let server = match read.take() {
            Some(server) => server,
            None => read_server(inner, op).await?,
        };
        if let Some(server) = &server
            && ack_if_applied(inner, op, server).await
        {
            return Ok(());
        }
        if server.is_none() && duplicate_without_document {
            // A duplicate key on another unique index: the server refuses this for good.
            return Err(keel_core::Error::from_facts(
                &keel_core::ErrorFacts::new(keel_core::DriverFailure::WriteError).with_code(11000),
                "duplicate key on a unique index other than _id",
            )
            .into());
        }
        let base_version = {
            let state = inner.lock();
            let base = op.base_version.unwrap_or(0);
            op.key()
                .ok()
                .and_then(|key| state.replica.get(&key).map(|r| r.effective_base(base)))
                .unwrap_or(base)
        };
        let (next, conflict) = match resolve(&settings, op, server.as_ref(), base_version) {
            Step::Ack(conflict) => {
                ack(inner, op, server, conflict, false).await;
                return Ok(());
            }
            Step::AckGone(conflict) => {
                ack(inner, op, None, conflict, false).await;
                return Ok(());
            }
            Step::Write(next, conflict) => (next, conflict),
        };
        record_decision(inner, op, conflict.as_ref()).await?;
        match write_server(inner, op, server.as_ref(), &next).await? {
            Written::Done => {
                ack(inner, op, Some(next), conflict, true).await;
                return Ok(());
            }
            Written::Raced => {
                duplicate_without_document = server.is_none();
            }
        }
    }
}

/// What an operation (not applied yet) leads to on the server's document (short-lived, one per
/// operation planned: not worth boxing the larger variant).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step {
    /// Nothing to write (a dropped conflict, an update of a document the server does not
    /// have): acknowledge it with the server's document as read.
    Ack(Option<ConflictRecord>),
    /// Nothing to write, and the document is not on the server (a delete of a document the
    /// server never had): acknowledge it without one.
    AckGone(Option<ConflictRecord>),
    /// Write this document, conditional on the one read.
    Write(ServerDoc, Option<ConflictRecord>),
}

/// Decides what `op` does to `server` (the document as read; `None`: absent): the operation
/// applied, or, when `base_version` (the operation's base as this client knows it) is not the
/// server's version, the collection's conflict policy.
pub(crate) fn resolve(
    settings: &crate::client::CollectionSettings,
    op: &Operation,
    server: Option<&ServerDoc>,
    base_version: i64,
) -> Step {
    let remote_version = server.map_or(0, |s| s.record.v);
    let remote_live = server.and_then(ServerDoc::live);
    let conflicting = base_version != remote_version;
    let (write, conflict) = if conflicting {
        let decision = decide(
            &settings.policy,
            settings.delete_rule,
            op,
            remote_live,
            server.map(|s| &s.fields),
            server.map_or(0, |s| u64::try_from(s.record.hlc).unwrap_or(0)),
            server.map_or("", |s| s.record.by.as_str()),
        );
        let record = ConflictRecord {
            id: 0,
            operation: op.clone(),
            remote_version,
            remote: remote_live.cloned(),
            result: decision.write.clone().flatten(),
            decided_by: decision.decided_by.to_owned(),
            outcome: decision.outcome,
            at_ms: i64::try_from(wall_ms()).unwrap_or(0),
        };
        (decision.write, Some(record))
    } else if matches!(op.kind, OperationKind::Update(_)) && remote_live.is_none() {
        // An update of a document that is not on the server: nothing to change.
        (None, None)
    } else {
        (Some(op.kind.apply(remote_live)), None)
    };
    let Some(result) = write else {
        return Step::Ack(conflict);
    };
    if result.is_none() && server.is_none() {
        // Delete of a document the server never had.
        return Step::AckGone(conflict);
    }
    Step::Write(
        next_server_doc(server, op, remote_version, result),
        conflict,
    )
}

/// Keeps the conflict decision of the write about to be sent — durably, before it is sent: if
/// the write lands and the process dies before the acknowledgement is stored, the restarted
/// client finds the write applied by its mark and logs this decision then (the store removes
/// it with the operation). A store that cannot record it fails the round (nothing is sent).
pub(crate) async fn record_decision(
    inner: &Inner,
    op: &Operation,
    conflict: Option<&ConflictRecord>,
) -> Result<(), RoundError> {
    let durable = {
        let mut state = inner.lock();
        let had = match conflict {
            Some(record) => state.decisions.insert(op.seq, record.clone()).is_some(),
            None => state.decisions.remove(&op.seq).is_some(),
        };
        let mutation = match conflict {
            Some(record) => Some(Mutation::PutDecision(
                op.seq,
                mongodb::bson::to_document(record)
                    .and_then(|doc| mongodb::bson::to_vec(&doc))
                    .map_err(|e| not_recorded(crate::SyncError::bson(e)))?,
            )),
            None if had => Some(Mutation::RemoveDecision(op.seq)),
            None => None,
        };
        match mutation {
            Some(mutation) => Some(inner.store.submit(vec![mutation]).map_err(not_recorded)?),
            None => None,
        }
    };
    if let Some(durable) = durable {
        durable.wait().await.map_err(not_recorded)?;
    }
    Ok(())
}

fn not_recorded(error: impl Into<crate::SyncError>) -> RoundError {
    RoundError::LocalStore(error.into())
}

/// The server document an operation leads to: `result` (`None`: a tombstone, which keeps the
/// last fields so subscription filters still match it) with the record bumped to
/// `remote_version + 1` and this operation's mark.
pub(crate) fn next_server_doc(
    server: Option<&ServerDoc>,
    op: &Operation,
    remote_version: i64,
    result: Option<Document>,
) -> ServerDoc {
    let mut record = server.map(|s| s.record.clone()).unwrap_or_default();
    record.v = remote_version + 1;
    record.applied.insert(
        op.client_id.clone(),
        i64::try_from(op.seq).unwrap_or(i64::MAX),
    );
    record.hlc = i64::try_from(op.hlc).unwrap_or(i64::MAX).max(record.hlc);
    record.by = op.client_id.clone();
    record.deleted = result.is_none();
    record.op = op.op_id.to_string();
    ServerDoc {
        fields: match result {
            Some(doc) => doc,
            None => server.map(|s| s.fields.clone()).unwrap_or_default(),
        },
        record,
        tracked: true,
        own_chain: None,
    }
}

/// Removes an uploaded (or resolved) operation from the queue, stores the server state it led
/// to, logs its conflict, and rebases the document's later operations on the new version.
pub(crate) async fn ack(
    inner: &Inner,
    op: &Operation,
    server: Option<ServerDoc>,
    conflict: Option<ConflictRecord>,
    wrote: bool,
) {
    ack_then(inner, op, server, conflict, wrote, true).await;
}

/// [`ack`], recomputing the document's view only when `refresh_view` (a batch recomputes each
/// document once after its last acknowledgement: re-applying every pending operation of a busy
/// document after each of them is quadratic).
pub(crate) async fn ack_then(
    inner: &Inner,
    op: &Operation,
    server: Option<ServerDoc>,
    conflict: Option<ConflictRecord>,
    wrote: bool,
    refresh_view: bool,
) {
    let durable = {
        let mut state = inner.lock();
        let Ok(key) = op.key() else {
            return;
        };
        let mut mutations = vec![Mutation::RemoveOp(op.seq)];
        state.remove_op(op.seq);
        state.decisions.remove(&op.seq);
        match &server {
            Some(server) => {
                let mut server = server.clone();
                if wrote {
                    // Extend the run of this client's own writes, or start one.
                    let before = server.record.v - 1;
                    server.own_chain = match state.replica.get(&key).and_then(|r| r.own_chain) {
                        Some((start, end)) if end == before => Some((start, server.record.v)),
                        _ => Some((op.base_version.unwrap_or(0).min(before), server.record.v)),
                    };
                }
                let server = &server;
                let newer = state
                    .replica
                    .get(&key)
                    .is_none_or(|known| server.record.v >= known.record.v);
                if newer {
                    if let Ok(bytes) = server.to_bytes() {
                        mutations.push(Mutation::PutReplica(key.to_bytes(), bytes));
                    }
                    state.replica.insert(key.clone(), server.clone());
                }
            }
            None => {
                state.replica.remove(&key);
                mutations.push(Mutation::RemoveReplica(key.to_bytes()));
            }
        }
        let logged = conflict.is_some();
        if let Some(mut conflict) = conflict {
            state.conflicts += 1;
            conflict.id = state.conflicts;
            metrics::counter!("keel_sync_conflicts_total", "app" => inner.app.clone()).increment(1);
            if let Ok(doc) = mongodb::bson::to_document(&conflict)
                && let Ok(bytes) = mongodb::bson::to_vec(&doc)
            {
                mutations.push(Mutation::PutConflict(conflict.id, bytes));
            }
            let _ = inner.conflicts.send(conflict);
        }
        if refresh_view {
            inner.view_changed(&mut state, &key);
        }
        (inner.store.submit(mutations), logged)
    };
    let (durable, logged) = durable;
    match durable {
        Ok(d) => inner
            .acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(d),
        Err(e) => {
            tracing::warn!(error = %e, "keel-sync: an upload's acknowledgement was not stored; it is checked again after a restart")
        }
    }
    // A conflict's record must be in the log before it counts as decided; a plain
    // acknowledgement may wait for the next flush (a crash before it only means the operation
    // is found applied by its mark after the restart).
    if logged || pending_acks(inner) >= ACK_FLUSH {
        flush_acks(inner).await;
    }
}

/// Acknowledgements committed without waiting, at most this many before they are awaited
/// together (they share the store's group commits: one fsync for many uploads).
const ACK_FLUSH: usize = 256;

fn pending_acks(inner: &Inner) -> usize {
    inner
        .acks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len()
}

/// Awaits the acknowledgements committed so far, then publishes the status: a status saying an
/// operation left the queue means the store says so too.
pub(crate) async fn flush_acks(inner: &Inner) {
    let acks = std::mem::take(
        &mut *inner
            .acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for ack in acks {
        if let Err(e) = ack.wait().await {
            tracing::warn!(error = %e, "keel-sync: an upload's acknowledgement was not stored; it is checked again after a restart");
        }
    }
    inner.publish_status();
}

pub(crate) async fn quarantine(inner: &Inner, op: &Operation, error: &keel_core::Error) {
    tracing::warn!(
        seq = op.seq,
        kind = op.kind.as_str(),
        class = error.class().as_str(),
        "keel-sync: the server refused an operation for good; it is quarantined"
    );
    metrics::counter!("keel_sync_quarantined_total", "app" => inner.app.clone()).increment(1);
    let durable = {
        let mut state = inner.lock();
        let quarantined = QuarantinedOperation {
            operation: op.clone(),
            error: error.to_string(),
            code: error.code(),
            at_ms: i64::try_from(wall_ms()).unwrap_or(0),
        };
        let mut mutations = vec![Mutation::RemoveOp(op.seq)];
        if let Ok(doc) = mongodb::bson::to_document(&quarantined)
            && let Ok(bytes) = mongodb::bson::to_vec(&doc)
        {
            mutations.push(Mutation::PutQuarantine(op.seq, bytes));
        }
        state.remove_op(op.seq);
        state.decisions.remove(&op.seq);
        state.quarantine.insert(op.seq, quarantined);
        if let Ok(key) = op.key() {
            inner.view_changed(&mut state, &key);
        }
        inner.store.submit(mutations)
    };
    if let Ok(d) = durable {
        let _ = d.wait().await;
    }
    // After the commit, as in `ack`: the status never runs ahead of the store.
    flush_acks(inner).await;
}

#[cfg(test)]
#[path = "upload_schedule_tests.rs"]
mod schedule_tests;
