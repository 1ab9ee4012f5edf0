//! The upload in a multi-document transaction, where the deployment has them (a replica set of
//! MongoDB 4.0+, a mongos of 4.2+): the queue's next operations of one collection are read
//! (one `find`), planned in order on what was read (an operation already applied is found by
//! its mark, a conflict is settled by the collection's policy, a first insert is an upsert that
//! only an absent document lets through), and written as the statements of one ordered
//! `update` command inside a transaction, committed only when every statement matched: all of
//! them apply, or none. The `_sync` record (version and marks) is written as without
//! transactions, so exactly once does not rest on the transaction: a commit whose outcome is
//! lost, or a process killed after it, is found applied by its marks on the next read.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use mongodb::{
    bson::{Bson, Document, doc},
    error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT},
};

use crate::{
    ConflictRecord, Operation,
    client::Inner,
    download::{read, split_ns},
    operation::DocKey,
    round_error::RoundError,
    server_record::ServerDoc,
    upload::{Step, ack_if_applied, ack_then, record_decision, resolve},
    upload_batch::Settled,
};

/// At most this many operations per transaction.
const MAX_OPS: usize = 256;
/// And at most this many bytes of replacements (the `update` command is one BSON document of
/// at most 16 MiB).
const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Plans of one batch tried before its head goes the one-at-a-time way (each failed plan met a
/// write made between its read and its transaction).
const PLANS: usize = 4;
/// Runs of one transaction after a `TransientTransactionError` (write conflict, a step-down),
/// and commits retried after an `UnknownTransactionCommitResult` (the driver's
/// `with_transaction` uses the same labels; MongoDB transactions specification,
/// `source/transactions/transactions.md`, "Retrying commitTransaction").
const RUNS: usize = 4;

/// Whether the deployment runs transactions, asked once (`hello`) and remembered.
pub(crate) async fn supported(inner: &Inner) -> Result<bool, RoundError> {
    if let Some(known) = *lock(&inner.transactions) {
        return Ok(known);
    }
    let hello = inner
        .keel
        .run(keel_core::Operation::read(
            "keel_sync.hello",
            |client: mongodb::Client| {
                let admin = client.database("admin");
                async move { admin.run_command(doc! { "hello": 1 }).await }
            },
        ))
        .await?;
    let supported = supports_transactions(&hello);
    *lock(&inner.transactions) = Some(supported);
    Ok(supported)
}

pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sessions (`logicalSessionTimeoutMinutes`) and a replica set member of wire version 7
/// (4.0) or a mongos (`msg: "isdbgrid"`) of wire version 8 (4.2): the minimum versions of the
/// MongoDB transactions specification (`source/transactions/transactions.md`). A standalone
/// has no transactions.
fn supports_transactions(hello: &Document) -> bool {
    let wire = match hello.get("maxWireVersion") {
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        _ => 0,
    };
    let sessions = hello.contains_key("logicalSessionTimeoutMinutes");
    let replica_set = hello.contains_key("setName");
    let mongos = hello.get_str("msg") == Ok("isdbgrid");
    sessions && ((replica_set && wire >= 7) || (mongos && wire >= 8))
}

/// What the plan does with one operation once the transaction committed.
enum Planned {
    /// Applied before (its mark is on the document read).
    Applied(ServerDoc),
    /// Nothing to write: acknowledged with this server state.
    Ack(Option<ServerDoc>, Option<ConflictRecord>),
    /// Written by the transaction's statement.
    Write(ServerDoc, Option<ConflictRecord>),
}

/// How a transaction ended.
enum Ended {
    Committed,
    /// A statement matched nothing (the document changed after the read): nothing applied.
    Raced,
    /// The server refused statement `.0` (ordered: the ones after it did not run); nothing
    /// applied.
    Refused(usize),
    /// The session could not be recorded in the store: nothing was sent.
    NotRecorded(crate::SyncError),
}

/// Uploads the queue's next operations of one collection in one transaction. `Ok(false)` when
/// there is nothing to upload or the head must go the one-at-a-time way (the server refuses
/// its statement, or every plan met a concurrent write).
pub(crate) async fn upload_in_transaction(inner: &Arc<Inner>) -> Result<bool, RoundError> {
    let mut ops = heads(inner);
    for _ in 0..PLANS {
        let Some(first) = ops.first() else {
            return Ok(false);
        };
        let ns = first.ns.clone();
        let servers = read_documents(inner, &ns, &ops).await?;
        let Plan {
            planned,
            statements,
            kept,
            refresh,
        } = plan(inner, &ops, &servers);
        ops.truncate(kept);
        // Durable before the write is sent (see `record_decision`).
        for (op, planned) in &planned {
            if let Planned::Write(_, conflict) = planned {
                record_decision(inner, op, conflict.as_ref()).await?;
            }
        }
        if !statements.is_empty() {
            match run_transaction(inner, &ns, statements).await? {
                Ended::Committed => {}
                Ended::Raced => continue,
                Ended::Refused(0) => return Ok(false),
                Ended::NotRecorded(error) => return Err(RoundError::LocalStore(error)),
                Ended::Refused(statement) => {
                    // Plan again only the operations before the refused statement (the head
                    // of the next round settles that one alone, or quarantines it).
                    ops.truncate(count_before_statement(&planned, statement));
                    continue;
                }
            }
        }
        acknowledge(inner, planned, &refresh).await;
        return Ok(true);
    }
    Ok(false)
}

/// How many planned operations come before the `statement`-th write.
fn count_before_statement(planned: &[(Operation, Planned)], statement: usize) -> usize {
    let mut writes = 0;
    for (i, (_, p)) in planned.iter().enumerate() {
        if matches!(p, Planned::Write(..)) {
            if writes == statement {
                return i;
            }
            writes += 1;
        }
    }
    planned.len()
}

/// Acknowledges the plan in order, then recomputes the views of `refresh` (the documents whose
/// server state was not the replica's, or that met a conflict or a mark: for the others the
/// view already is the replica with these operations on top, as `upload_batch` explains).
async fn acknowledge(
    inner: &Arc<Inner>,
    planned: Vec<(Operation, Planned)>,
    refresh: &HashSet<DocKey>,
) {
    for (op, planned) in planned {
        match planned {
            Planned::Applied(server) => {
                ack_if_applied(inner, &op, &server).await;
            }
            Planned::Ack(server, conflict) => {
                ack_then(inner, &op, server, conflict, false, false).await;
            }
            Planned::Write(next, conflict) => {
                ack_then(inner, &op, Some(next), conflict, true, false).await;
            }
        }
        metrics::counter!("keel_sync_uploaded_total", "app" => inner.app.clone()).increment(1);
    }
    let mut state = inner.lock();
    for key in refresh {
        inner.view_changed(&mut state, key);
    }
}

/// The queue's next operations: one namespace, none waiting for its local commit.
fn heads(inner: &Inner) -> Vec<Operation> {
    let state = inner.lock();
    let mut ops: Vec<Operation> = Vec::new();
    for op in state.queue.values() {
        if ops.len() >= MAX_OPS
            || state.in_flight.contains(&op.seq)
            || ops.first().is_some_and(|first| first.ns != op.ns)
        {
            break;
        }
        ops.push(op.clone());
    }
    ops
}

async fn read_documents(
    inner: &Inner,
    ns: &str,
    ops: &[Operation],
) -> Result<HashMap<DocKey, ServerDoc>, RoundError> {
    let mut seen = HashSet::new();
    let ids: Vec<Bson> = ops
        .iter()
        .filter(|op| op.key().is_ok_and(|key| seen.insert(key)))
        .map(|op| op.doc_id.clone())
        .collect();
    let found = read::by_ids(&inner.keel, ns, &Document::new(), ids).await?;
    Ok(found
        .into_iter()
        .filter_map(|doc| {
            let key = DocKey::new(ns, doc.get("_id")?).ok()?;
            Some((key, ServerDoc::split(doc)))
        })
        .collect())
}

/// A batch's plan (see [`plan`]).
struct Plan {
    planned: Vec<(Operation, Planned)>,
    statements: Vec<Document>,
    /// How many of the operations it covers.
    kept: usize,
    /// The documents whose view is recomputed after the acknowledgements.
    refresh: HashSet<DocKey>,
}

/// Plans `ops` in order on the documents read, each on the one before it left. Returns the
/// plan, the `update` statements, how many operations it covers (it stops before the
/// statements outgrow [`MAX_BYTES`]), and the documents whose view must be recomputed after.
fn plan(inner: &Inner, ops: &[Operation], servers: &HashMap<DocKey, ServerDoc>) -> Plan {
    let settings = ops
        .first()
        .map(|op| inner.settings_for(&op.ns))
        .unwrap_or_default();
    let state = inner.lock();
    // The document after this batch's earlier writes (`None`: absent).
    let mut working: HashMap<DocKey, Option<ServerDoc>> = HashMap::new();
    let (mut planned, mut statements) = (Vec::new(), Vec::new());
    let mut refresh = HashSet::new();
    let mut bytes = 0_usize;
    for op in ops {
        let Ok(key) = op.key() else {
            break;
        };
        if !working.contains_key(&key) {
            // The view is the replica with the pending operations on top: a server document
            // at another version (or none known) changes what they lead to.
            let same = match (servers.get(&key), state.replica.get(&key)) {
                (Some(server), Some(replica)) => {
                    server.tracked && replica.tracked && server.record.v == replica.record.v
                }
                _ => false,
            };
            if !same {
                refresh.insert(key.clone());
            }
        }
        let current = match working.get(&key) {
            Some(doc) => doc.clone(),
            None => servers.get(&key).cloned(),
        };
        if let Some(server) = &current
            && server.record.applied_seq(&op.client_id) >= Some(op.seq)
        {
            planned.push((op.clone(), Planned::Applied(server.clone())));
            refresh.insert(key);
            continue;
        }
        // As `upload_one`: the base this client knows, its own earlier writes (also this
        // batch's) not counting as conflicts.
        let base = op.base_version.unwrap_or(0);
        let known = match working.get(&key) {
            Some(doc) => doc.as_ref(),
            None => state.replica.get(&key),
        };
        let base_version = known.map_or(base, |k| k.effective_base(base));
        match resolve(&settings, op, current.as_ref(), base_version) {
            Step::Ack(conflict) => {
                refresh.insert(key);
                planned.push((op.clone(), Planned::Ack(current, conflict)));
            }
            Step::AckGone(conflict) => {
                refresh.insert(key);
                planned.push((op.clone(), Planned::Ack(None, conflict)));
            }
            Step::Write(mut next, conflict) => {
                if conflict.is_some() {
                    refresh.insert(key.clone());
                }
                let statement = match &current {
                    Some(server) => {
                        doc! { "q": server.unchanged_filter(&op.doc_id), "u": next.join() }
                    }
                    // Inserted only while absent: were it written meanwhile, the upsert's
                    // insert is a duplicate `_id` and the transaction aborts.
                    None => doc! {
                        "q": { "_id": op.doc_id.clone(), "_sync.op": next.record.op.clone() },
                        "u": next.join(),
                        "upsert": true,
                    },
                };
                let size = mongodb::bson::to_vec(&statement).map_or(usize::MAX, |b| b.len());
                if !statements.is_empty() && size.saturating_add(bytes) > MAX_BYTES {
                    break;
                }
                bytes = bytes.saturating_add(size);
                statements.push(statement);
                let before = next.record.v - 1;
                next.own_chain = match known.and_then(|k| k.own_chain) {
                    Some((start, end)) if end == before => Some((start, next.record.v)),
                    _ => Some((base.min(before), next.record.v)),
                };
                working.insert(key, Some(next.clone()));
                planned.push((op.clone(), Planned::Write(next, conflict)));
            }
        }
    }
    let kept = planned.len();
    Plan {
        planned,
        statements,
        kept,
        refresh,
    }
}

async fn run_transaction(
    inner: &Inner,
    ns: &str,
    statements: Vec<Document>,
) -> Result<Ended, RoundError> {
    let (db, coll) = split_ns(ns);
    let count = statements.len();
    let recorded = inner.txn_session.clone();
    let command = doc! { "update": coll, "updates": statements, "ordered": true };
    // Keel may run this again (a network error): a transaction that did not commit applied
    // nothing, and one that did makes every statement of the repeat match nothing (`Raced`),
    // after which the read finds the marks.
    let ended = inner
        .keel
        .run(keel_core::Operation::write(
            "keel_sync.upload_transaction",
            true,
            move |client: mongodb::Client| {
                let (db, command, recorded) = (db.clone(), command.clone(), recorded.clone());
                async move { transaction(&client, &db, command, count, &recorded).await }
            },
        ))
        .await?;
    Ok(ended)
}

async fn transaction(
    client: &mongodb::Client,
    db: &str,
    command: Document,
    count: usize,
    recorded: &crate::txn_session::Recorded,
) -> mongodb::error::Result<Ended> {
    let database = client.database(db);
    // A transaction a killed process, a lost abort or a failed run left open holds its
    // documents against this one.
    recorded.kill(client).await?;
    let mut session = client.start_session().await?;
    let mut runs = 0;
    'run: loop {
        runs += 1;
        // Durable before the first statement, so a restart after a kill can end it. Only a
        // commit ends it: drivers ignore abortTransaction's errors (transactions
        // specification), so an abort may not have arrived, and the next run kills the
        // session first.
        if let Err(error) = recorded.record(session.id()).await {
            return Ok(Ended::NotRecorded(error));
        }
        session.start_transaction().await?;
        let reply = match database
            .run_command(command.clone())
            .session(&mut session)
            .await
        {
            Ok(reply) => reply,
            Err(error) => {
                // The server aborted it already; this only tells it so.
                let _ = session.abort_transaction().await;
                if error.contains_label(TRANSIENT_TRANSACTION_ERROR) && runs < RUNS {
                    continue 'run;
                }
                return Err(error);
            }
        };
        let settled = Settled::from_reply(&reply, count);
        if settled.ran < count || !settled.all_matched {
            let _ = session.abort_transaction().await;
            return Ok(if settled.ran < count {
                Ended::Refused(settled.ran)
            } else {
                Ended::Raced
            });
        }
        let mut commits = 0;
        loop {
            commits += 1;
            match session.commit_transaction().await {
                Ok(()) => {
                    recorded.ended();
                    return Ok(Ended::Committed);
                }
                Err(error)
                    if error.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                        && commits < RUNS => {}
                Err(error) if error.contains_label(TRANSIENT_TRANSACTION_ERROR) && runs < RUNS => {
                    continue 'run;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_need_a_replica_set_of_4_0_or_a_mongos_of_4_2_with_sessions() {
        let set =
            doc! { "setName": "rs0", "maxWireVersion": 21, "logicalSessionTimeoutMinutes": 30 };
        assert!(supports_transactions(&set));
        let old_set =
            doc! { "setName": "rs0", "maxWireVersion": 6, "logicalSessionTimeoutMinutes": 30 };
        assert!(!supports_transactions(&old_set));
        let mongos =
            doc! { "msg": "isdbgrid", "maxWireVersion": 8_i64, "logicalSessionTimeoutMinutes": 30 };
        assert!(supports_transactions(&mongos));
        let old_mongos =
            doc! { "msg": "isdbgrid", "maxWireVersion": 7, "logicalSessionTimeoutMinutes": 30 };
        assert!(!supports_transactions(&old_mongos));
        let standalone = doc! { "maxWireVersion": 21, "logicalSessionTimeoutMinutes": 30 };
        assert!(!supports_transactions(&standalone));
        let no_sessions = doc! { "setName": "rs0", "maxWireVersion": 21 };
        assert!(!supports_transactions(&no_sessions));
    }
}
