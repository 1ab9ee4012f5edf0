//! `local.oplog.rs` for reading, as mongod exposes its oplog: one document per change with
//! `ts`, `t`, `v`, `op`, `ns`, `o` (and `o2`), `wall`, in natural (timestamp) order.
//!
//! What tools read there is the oplog window: `rs.printReplicationInfo()` /
//! `db.getReplicationInfo()` (mongosh) take the first entry of `find().sort({$natural: 1})
//! .limit(1)` and the last of `sort({$natural: -1})`, and report `tLast - tFirst` as "log length
//! start to end" (MongoDB manual, "Replication Info Reference": `timeDiff`, `tFirst`, `tLast`).
//! Only reads are served; `sort` may name only `$natural`.

use std::sync::Arc;

use bson::{Bson, Document, doc};

use super::cursor::first_batch;
use super::{CommandError, Ctx, args, codes};
use crate::query::filter::Filter;
use crate::query::projection::Projection;
use crate::server::lock;
use crate::storage::{OpKind, OplogEntry};

/// The oplog's namespace (database `local`).
pub(crate) const OPLOG_COLLECTION: &str = "oplog.rs";

/// `find` on `local.oplog.rs`: `filter`, `sort: {$natural: ±1}`, `skip`, `limit`,
/// `projection`, `batchSize`. `None` when this server keeps no oplog (standalone), so the
/// ordinary (empty) collection answers, as on a standalone mongod.
pub(crate) fn find(ctx: &Ctx<'_>, cmd: &Document) -> Option<Result<Document, CommandError>> {
    ctx.shared.replica_set.as_ref()?;
    Some(run_find(ctx, cmd))
}

fn run_find(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let filter = match args::opt_doc(cmd, "filter", "find")? {
        Some(f) => Filter::parse(f)?,
        None => Filter::parse(&Document::new())?,
    };
    let mut reverse = false;
    if let Some(sort) = args::opt_doc(cmd, "sort", "find")? {
        for (key, dir) in sort {
            match (key.as_str(), dir) {
                ("$natural", Bson::Int32(-1)) | ("$natural", Bson::Int64(-1)) => reverse = true,
                ("$natural", Bson::Double(d)) if *d == -1.0 => reverse = true,
                ("$natural", _) => {}
                _ => {
                    return Err(CommandError::new(
                        codes::COMMAND_NOT_SUPPORTED,
                        format!(
                            "the testkit's local.oplog.rs sorts only by $natural, not by {key}"
                        ),
                    ));
                }
            }
        }
    }
    let projection = args::opt_doc(cmd, "projection", "find")?
        .map(Projection::parse)
        .transpose()?;
    let skip = args::opt_non_negative(cmd, "skip", "find")?.unwrap_or(0);
    let limit = args::opt_non_negative(cmd, "limit", "find")?.unwrap_or(0);
    let batch_size = args::opt_non_negative(cmd, "batchSize", "find")?;
    let single_batch = args::opt_bool(cmd, "singleBatch", "find")?.unwrap_or(false);
    let docs: Vec<Document> = {
        let storage = lock(&ctx.shared.storage);
        let Some(oplog) = storage.oplog() else {
            return Ok(first_batch(ctx, ns(), Vec::new(), batch_size, true));
        };
        let all = oplog.since(bson::Timestamp {
            time: 0,
            increment: 0,
        });
        let entries: Box<dyn Iterator<Item = _>> = if reverse {
            Box::new(all.rev())
        } else {
            Box::new(all)
        };
        let matching = documents(entries, reverse)
            .filter(|d| filter.matches(d))
            .skip(skip);
        if limit > 0 {
            matching.take(limit).collect()
        } else {
            matching.collect()
        }
    };
    let docs = match &projection {
        Some(p) => docs.iter().map(|d| p.apply(d)).collect::<Result<_, _>>()?,
        None => docs,
    };
    let single = single_batch || (limit > 0 && batch_size.is_none_or(|b| limit <= b));
    Ok(first_batch(ctx, ns(), docs, batch_size, single))
}

fn ns() -> String {
    format!("local.{OPLOG_COLLECTION}")
}

/// The documents of `entries` (in the order given; `reverse` when newest first): one per
/// entry, except that a transaction's entries, which share the commit's timestamp, make one
/// `applyOps` document as mongod writes a committed transaction.
fn documents<'a>(
    entries: impl Iterator<Item = &'a Arc<OplogEntry>>,
    reverse: bool,
) -> impl Iterator<Item = Document> {
    let mut entries = entries.peekable();
    std::iter::from_fn(move || {
        let e = entries.next()?;
        let Some(txn) = &e.txn else {
            return Some(entry_document(e));
        };
        let mut ops = vec![op_fields(e)];
        while let Some(next) = entries.next_if(|n| n.ts == e.ts && n.txn.is_some()) {
            ops.push(op_fields(next));
        }
        if reverse {
            ops.reverse();
        }
        Some(apply_ops_document(e, txn, ops))
    })
}

/// An entry as mongod 7.0 writes it (`t`: the term, always 1 here; updates carry the
/// post-image in `o` where mongod writes a `$v: 2` diff).
fn entry_document(e: &OplogEntry) -> Document {
    let mut d = op_fields(e);
    stamp(&mut d, e);
    d
}

/// mongod's entry for an unprepared transaction's commit (`OpObserverImpl`'s
/// `onUnpreparedTransactionCommit`): one `applyOps` command on `admin` holding every operation,
/// with the session's `lsid` and `txnNumber` and a null `prevOpTime` (first of its chain).
fn apply_ops_document(e: &OplogEntry, txn: &Document, ops: Vec<Document>) -> Document {
    let mut d = doc! {
        "op": "c",
        "ns": "admin.$cmd",
        "o": {"applyOps": ops},
    };
    d.extend(txn.clone());
    d.insert(
        "prevOpTime",
        doc! {"ts": bson::Timestamp { time: 0, increment: 0 }, "t": -1_i64},
    );
    stamp(&mut d, e);
    d
}

/// `ts`, `t`, `v` and `wall`.
fn stamp(d: &mut Document, e: &OplogEntry) {
    d.insert("ts", e.ts);
    d.insert("t", 1_i64);
    d.insert("v", 2_i64);
    d.insert("wall", e.wall);
}

/// What the entry did: `op`, `ns`, `o` and (updates) `o2`.
fn op_fields(e: &OplogEntry) -> Document {
    let coll = e.coll.clone().unwrap_or_default();
    let (op, ns, o) = match &e.kind {
        OpKind::Insert => ("i", format!("{}.{coll}", e.db), e.post_image.clone()),
        OpKind::Update(_) | OpKind::Replace => {
            ("u", format!("{}.{coll}", e.db), e.post_image.clone())
        }
        OpKind::Delete => ("d", format!("{}.{coll}", e.db), e.document_key.clone()),
        OpKind::Drop => ("c", format!("{}.$cmd", e.db), Some(doc! {"drop": coll})),
        OpKind::DropDatabase => (
            "c",
            format!("{}.$cmd", e.db),
            Some(doc! {"dropDatabase": 1}),
        ),
        OpKind::Ddl(op) => (
            "c",
            format!("{}.$cmd", e.db),
            Some(op.oplog_command(&e.db, &coll)),
        ),
        OpKind::Noop => ("n", String::new(), Some(doc! {"msg": "periodic noop"})),
    };
    let mut d = doc! {
        "op": op,
        "ns": ns,
        "o": o.unwrap_or_default(),
    };
    if matches!(e.kind, OpKind::Update(_) | OpKind::Replace)
        && let Some(key) = &e.document_key
    {
        d.insert("o2", key.clone());
    }
    d
}
