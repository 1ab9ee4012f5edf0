//! `insert`: ordered and unordered batches with per-document write errors.

use bson::{Bson, Document, doc, oid::ObjectId};

use super::args::{self, ns};
use super::write_result::{attach, duplicate_key_error, write_error};
use super::{CommandError, Ctx};
use crate::server::Counters;

/// Puts `_id` first (generating an ObjectId when missing) and rejects invalid `_id` types.
pub(crate) fn prepare_for_insert(doc: Document) -> Result<Document, CommandError> {
    if let Some(id) = doc.get("_id")
        && matches!(
            id,
            Bson::Array(_) | Bson::RegularExpression(_) | Bson::Undefined
        )
    {
        return Err(CommandError::new(
            53,
            format!(
                "The '_id' value cannot be of type {}",
                super::error::type_name(id)
            ),
        ));
    }
    if doc.keys().next().is_some_and(|k| k == "_id") {
        return Ok(doc);
    }
    let mut out = Document::new();
    out.insert(
        "_id",
        doc.get("_id")
            .cloned()
            .unwrap_or_else(|| Bson::ObjectId(ObjectId::new())),
    );
    for (k, v) in doc {
        if k != "_id" {
            out.insert(k, v);
        }
    }
    Ok(out)
}

pub(super) fn insert(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "insert")?;
    args::check_db_name(ctx.db)?;
    let documents = args::write_batch(cmd, "documents", "insert")?;
    let ordered = args::opt_bool(cmd, "ordered", "insert")?.unwrap_or(true);
    let namespace = ns(ctx.db, coll);
    let mut n = 0i32;
    let mut errors = Vec::new();
    {
        let mut storage = ctx.storage();
        for (index, raw) in documents.iter().enumerate() {
            let result = match raw {
                Bson::Document(d) => prepare_for_insert(d.clone()).and_then(|d| {
                    storage.validate(ctx.db, coll, None, &d)?;
                    storage
                        .insert(ctx.db, coll, d)
                        .map_err(|dup| duplicate_key_error(&namespace, &dup))
                }),
                other => Err(CommandError::type_mismatch(
                    "insert.documents",
                    "object",
                    other,
                )),
            };
            match result {
                Ok(()) => n += 1,
                Err(e) => {
                    errors.push(write_error(index, &e));
                    if ordered {
                        break;
                    }
                }
            }
        }
    }
    Counters::add(&ctx.shared.counters.insert, i64::from(n));
    let mut reply = doc! {"n": n};
    attach(&mut reply, errors);
    reply.insert("ok", 1.0);
    Ok(reply)
}
