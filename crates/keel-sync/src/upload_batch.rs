//! The upload's no-conflict path: the queue's next operations, computed on the local replica
//! (the server's last known state) without reading the server, sent as the conditional writes
//! of one ordered `update` command — one round trip for many operations. When not every
//! statement matched, one read of the batch's documents finds the applied operations by their
//! marks; the first one not applied goes through the read-then-write path of `upload.rs` on
//! that read, and the others are planned again.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use mongodb::bson::{Bson, Document, doc};

use crate::{
    Operation, OperationKind,
    client::Inner,
    download::{read, split_ns},
    operation::DocKey,
    round_error::RoundError,
    server_record::ServerDoc,
    upload::{ack_if_applied, ack_then, next_server_doc, quarantine, upload_one_from},
};

/// At most this many operations per `update` command.
const MAX_STATEMENTS: usize = 256;
/// And at most this many bytes of replacement documents: `run_command` sends the command as one
/// BSON document, which the server takes up to 16 MiB (`maxBsonObjectSize`; a `replaceOne`
/// sends its document in an OP_MSG document sequence instead). A larger document uploads the
/// slow way.
const MAX_BYTES: usize = 4 * 1024 * 1024;

/// One queued operation and the server document it leads to when its statement matches.
struct Planned {
    op: Operation,
    next: ServerDoc,
}

/// Uploads the longest run of queue heads that the replica predicts are no conflict. `Ok(false)`
/// when the head is not one (its document is not in the replica, untracked, a conflict, ...):
/// the caller uploads it the slow way.
pub(crate) async fn upload_batch(inner: &Arc<Inner>) -> Result<bool, RoundError> {
    let (planned, statements) = plan(inner);
    let Some(first) = planned.first() else {
        return Ok(false);
    };
    let (db, coll) = split_ns(&first.op.ns);
    let count = statements.len();
    // `ordered`: the statements of one document run in queue order (and after a write error
    // none runs). No retryable-write transaction number (a command the driver passes through):
    // a repeat cannot apply twice because every statement is conditional on the version.
    let command = doc! { "update": coll, "updates": statements, "ordered": true };
    let reply = inner
        .keel
        .run(keel_core::Operation::write(
            "keel_sync.upload_batch",
            true,
            move |client: mongodb::Client| {
                let database = client.database(&db);
                let mut command = command.clone();
                if let Some(concern) = database.write_concern()
                    && let Ok(concern) = mongodb::bson::to_document(concern)
                    && !concern.is_empty()
                {
                    command.insert("writeConcern", concern);
                }
                async move { database.run_command(command).await }
            },
        ))
        .await;
    let settled = match reply {
        Ok(reply) => Settled::from_reply(&reply, count),
        // The operation that the server refuses is found and quarantined one at a time.
        Err(error) if RoundError::permanent_server(&error) => Settled::unknown(count),
        Err(error) => return Err(error.into()),
    };
    let mut planned = planned;
    // Statements after a write error did not run (ordered): they stay queued, planned again.
    let after_stop = planned.split_off(settled.ran);
    if settled.all_matched {
        // No view to recompute: each operation's result was computed on the replica (or on the
        // batch's earlier result), exactly as the view applies it on top of the replica, so
        // moving it from the queue into the replica leaves the view as it is (anything else
        // that moves the replica or the queue — a download, a local write, a rollback —
        // updates the view itself). Recomputing re-applied every pending operation of every
        // document in the batch: most of the upload's CPU with a long queue.
        for Planned { op, next } in planned {
            ack_then(inner, &op, Some(next), None, true, false).await;
            metrics::counter!("keel_sync_uploaded_total", "app" => inner.app.clone()).increment(1);
        }
        // The statement the server refused (a write error stops an ordered batch there) is
        // sent again alone: quarantined when the refusal is for good.
        if let Some(refused) = after_stop.first() {
            settle_one(inner, &refused.op, None).await?;
        }
        return Ok(true);
    }
    // An update reply counts matches but does not say which statement matched: one read of the
    // batch's documents finds the applied operations by their marks. The first operation not
    // applied is settled on that read (resolve, conditional write); the rest stay queued and are
    // planned again on the replica it leaves (normally a batch again, without reads).
    let servers = read_batch_documents(inner, &planned).await?;
    let mut first_unapplied = None;
    for Planned { op, .. } in planned {
        let key = op.key().ok();
        let server = key.as_ref().and_then(|key| servers.get(key));
        if let Some(server) = server
            && ack_if_applied(inner, &op, server).await
        {
            metrics::counter!("keel_sync_uploaded_total", "app" => inner.app.clone()).increment(1);
            continue;
        }
        if first_unapplied.is_none() {
            first_unapplied = Some((op, server.cloned()));
        }
    }
    if let Some((op, server)) = first_unapplied {
        settle_one(inner, &op, Some(server)).await?;
    }
    Ok(true)
}

/// Uploads one operation the read-then-write way (`read`: the server's document as already
/// read, to start from); quarantines it when the server refuses it for good.
async fn settle_one(
    inner: &Arc<Inner>,
    op: &Operation,
    read: Option<Option<ServerDoc>>,
) -> Result<(), RoundError> {
    match upload_one_from(inner, op, read).await {
        Ok(()) => {
            metrics::counter!("keel_sync_uploaded_total", "app" => inner.app.clone()).increment(1);
            Ok(())
        }
        Err(ref error) if let Some(refused) = error.permanent() => {
            quarantine(inner, op, refused).await;
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// What an ordered `update` reply says about its statements.
#[derive(Debug, PartialEq)]
pub(crate) struct Settled {
    /// How many statements ran: all, or up to the one with a write error (ordered: the
    /// server stops there; that one is not applied).
    pub(crate) ran: usize,
    /// Whether every statement that ran without an error matched (then the reply alone
    /// says which were applied) and the write concern was met.
    pub(crate) all_matched: bool,
}

impl Settled {
    fn unknown(count: usize) -> Self {
        Self {
            ran: count,
            all_matched: false,
        }
    }

    /// From an `update` command's reply (`n` counts matched documents; `writeErrors` carry
    /// the statement `index`; see the server's `update` command reply: `n`, `nModified`,
    /// `writeErrors`, `writeConcernError`).
    pub(crate) fn from_reply(reply: &Document, count: usize) -> Self {
        let n = match reply.get("n") {
            Some(Bson::Int32(n)) => usize::try_from(*n).ok(),
            Some(Bson::Int64(n)) => usize::try_from(*n).ok(),
            _ => None,
        };
        let stopped_at = reply.get_array("writeErrors").ok().and_then(|errors| {
            errors
                .iter()
                .filter_map(|e| match e.as_document()?.get("index")? {
                    Bson::Int32(i) => usize::try_from(*i).ok(),
                    Bson::Int64(i) => usize::try_from(*i).ok(),
                    _ => None,
                })
                .min()
        });
        let has_errors = reply.contains_key("writeErrors");
        let ran = match stopped_at {
            Some(index) => index.min(count),
            // Write errors without an index: nothing known per statement.
            None if has_errors => return Self::unknown(count),
            None => count,
        };
        Self {
            ran,
            all_matched: n == Some(ran) && !reply.contains_key("writeConcernError"),
        }
    }
}

/// The batch's documents as the server has them now, by key (a missing one was deleted). A
/// read the server refuses for good gives none: each operation's own read then meets the same
/// refusal and quarantines it, as without batching.
async fn read_batch_documents(
    inner: &Inner,
    planned: &[Planned],
) -> Result<HashMap<DocKey, ServerDoc>, keel_core::Error> {
    let Some(first) = planned.first() else {
        return Ok(HashMap::new());
    };
    let ns = first.op.ns.clone();
    let mut seen = HashSet::new();
    let ids: Vec<Bson> = planned
        .iter()
        .filter(|p| p.op.key().is_ok_and(|key| seen.insert(key)))
        .map(|p| p.op.doc_id.clone())
        .collect();
    let found = match read::by_ids(&inner.keel, &ns, &Document::new(), ids).await {
        Ok(found) => found,
        Err(error) if RoundError::permanent_server(&error) => Vec::new(),
        Err(error) => return Err(error),
    };
    Ok(found
        .into_iter()
        .filter_map(|doc| {
            let key = DocKey::new(&ns, doc.get("_id")?).ok()?;
            Some((key, ServerDoc::split(doc)))
        })
        .collect())
}

/// The queue's next operations (one namespace, none waiting for its local commit) whose
/// document's replica version is the version they are based on, each computed on the replica
/// (or on the batch's earlier operation of the same document), with their `update` statements.
fn plan(inner: &Inner) -> (Vec<Planned>, Vec<Document>) {
    let state = inner.lock();
    let mut predicted: HashMap<DocKey, ServerDoc> = HashMap::new();
    let (mut planned, mut statements) = (Vec::new(), Vec::new());
    let mut bytes = 0_usize;
    for op in state.queue.values() {
        if planned.len() >= MAX_STATEMENTS
            || state.in_flight.contains(&op.seq)
            || planned.first().is_some_and(|p: &Planned| p.op.ns != op.ns)
        {
            break;
        }
        let Ok(key) = op.key() else {
            break;
        };
        let chained = predicted.contains_key(&key);
        let Some(server) = predicted.get(&key).or_else(|| state.replica.get(&key)) else {
            break;
        };
        let base = op.base_version.unwrap_or(0);
        let remote_live = server.live();
        if !server.tracked
            || server.effective_base(base) != server.record.v
            || (matches!(op.kind, OperationKind::Update(_)) && remote_live.is_none())
        {
            break;
        }
        let mut next = next_server_doc(
            Some(server),
            op,
            server.record.v,
            op.kind.apply(remote_live),
        );
        // As `ack` will extend it, so the next operation of this document in the batch sees
        // its base as this client's own chain (not a conflict), as after a real acknowledgement.
        let before = server.record.v;
        next.own_chain = match server.own_chain {
            Some((start, end)) if end == before => Some((start, next.record.v)),
            _ => Some((base.min(before), next.record.v)),
        };
        // The first statement of a document matches only the replica's version; a later one
        // also only the version the statement before it wrote (its op id), so when an earlier
        // statement did not match, a version someone else wrote is not overwritten.
        let mut filter = doc! { "_id": op.doc_id.clone(), "_sync.v": server.record.v };
        if chained {
            filter.insert("_sync.op", server.record.op.clone());
        }
        let replacement = next.join();
        let size = mongodb::bson::to_vec(&replacement).map_or(usize::MAX, |b| b.len());
        if size.saturating_add(bytes) > MAX_BYTES {
            break;
        }
        bytes += size;
        statements.push(doc! { "q": filter, "u": replacement });
        predicted.insert(key, next.clone());
        planned.push(Planned {
            op: op.clone(),
            next,
        });
    }
    (planned, statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_says_how_many_statements_ran_and_whether_all_of_them_matched() {
        let all = doc! { "ok": 1, "n": 4, "nModified": 4 };
        assert_eq!(
            Settled::from_reply(&all, 4),
            Settled {
                ran: 4,
                all_matched: true
            }
        );
        let one_missed = doc! { "ok": 1, "n": 3, "nModified": 3 };
        assert_eq!(
            Settled::from_reply(&one_missed, 4),
            Settled {
                ran: 4,
                all_matched: false
            }
        );
        // Ordered: the server stopped at statement 2; 0 and 1 matched.
        let refused =
            doc! { "ok": 1, "n": 2, "writeErrors": [{ "index": 2, "code": 121, "errmsg": "x" }] };
        assert_eq!(
            Settled::from_reply(&refused, 4),
            Settled {
                ran: 2,
                all_matched: true
            }
        );
        let refused_after_a_miss =
            doc! { "ok": 1, "n": 1, "writeErrors": [{ "index": 2, "code": 121 }] };
        assert_eq!(
            Settled::from_reply(&refused_after_a_miss, 4),
            Settled {
                ran: 2,
                all_matched: false
            }
        );
        let concern = doc! { "ok": 1, "n": 4, "writeConcernError": { "code": 64 } };
        assert_eq!(
            Settled::from_reply(&concern, 4),
            Settled {
                ran: 4,
                all_matched: false
            }
        );
        let no_index = doc! { "ok": 1, "n": 4, "writeErrors": [{ "code": 121 }] };
        assert_eq!(Settled::from_reply(&no_index, 4), Settled::unknown(4));
    }
}
