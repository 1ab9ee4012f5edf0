//! Reads: `find` (filter, sort, skip, limit, projection, batchSize), `getMore`, `killCursors`,
//! `count`.

use bson::{Bson, Document, doc};

use super::args::{self, ns};
use super::cursor::first_batch;
use super::{CommandError, Ctx, codes};
use crate::query::filter::Filter;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use crate::server::{Counters, lock};
use crate::storage::Storage;

/// Matching documents of `db.coll` after filter, sort, skip and limit (0 = no limit).
pub(crate) fn query(
    storage: &Storage,
    db: &str,
    coll: &str,
    filter: &Filter,
    sort: &SortSpec,
    skip: usize,
    limit: usize,
) -> Vec<Document> {
    let Some(c) = storage.collection(db, coll) else {
        return Vec::new();
    };
    // Without a sort, the scan can stop early.
    let scan_limit = if sort.is_empty() && limit > 0 {
        skip.saturating_add(limit)
    } else {
        0
    };
    let mut docs: Vec<Document> = c
        .scan(filter, scan_limit)
        .into_iter()
        .filter_map(|rid| c.get(rid).cloned())
        .collect();
    sort.sort(&mut docs);
    let docs = docs.into_iter().skip(skip);
    if limit > 0 {
        docs.take(limit).collect()
    } else {
        docs.collect()
    }
}

pub(super) fn parse_filter(
    cmd: &Document,
    field: &str,
    command: &str,
) -> Result<Filter, CommandError> {
    match args::opt_doc(cmd, field, command)? {
        Some(f) => Filter::parse(f),
        None => Filter::parse(&Document::new()),
    }
}

pub(super) fn find(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "find")?;
    if ctx.db == "local"
        && coll == super::oplog_collection::OPLOG_COLLECTION
        && let Some(reply) = super::oplog_collection::find(ctx, cmd)
    {
        return reply;
    }
    let filter = parse_filter(cmd, "filter", "find")?;
    let sort = args::opt_doc(cmd, "sort", "find")?
        .map(SortSpec::parse)
        .transpose()?
        .unwrap_or_default();
    let projection = args::opt_doc(cmd, "projection", "find")?
        .map(Projection::parse)
        .transpose()?;
    let skip = args::opt_non_negative(cmd, "skip", "find")?.unwrap_or(0);
    let limit = args::opt_non_negative(cmd, "limit", "find")?.unwrap_or(0);
    let batch_size = args::opt_non_negative(cmd, "batchSize", "find")?;
    let single_batch = args::opt_bool(cmd, "singleBatch", "find")?.unwrap_or(false);
    Counters::add(&ctx.shared.counters.query, 1);
    let docs = match super::views::documents(ctx, coll)? {
        Some(view) => super::views::query_view(view, &filter, &sort, skip, limit),
        None => ctx
            .with_read_storage(|storage| query(storage, ctx.db, coll, &filter, &sort, skip, limit)),
    };
    let docs = match &projection {
        Some(p) => docs.iter().map(|d| p.apply(d)).collect::<Result<_, _>>()?,
        None => docs,
    };
    // With a limit no larger than the batch, everything fits in the first batch.
    let single = single_batch || (limit > 0 && batch_size.is_none_or(|b| limit <= b));
    Ok(first_batch(ctx, ns(ctx.db, coll), docs, batch_size, single))
}

pub(super) fn get_more(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let id = match cmd.get("getMore") {
        Some(Bson::Int64(id)) => *id,
        Some(other) => {
            return Err(CommandError::type_mismatch(
                "getMore.getMore",
                "long",
                other,
            ));
        }
        None => return Err(CommandError::failed_to_parse("missing cursor id")),
    };
    let coll = match cmd.get("collection") {
        Some(Bson::String(s)) => s.clone(),
        Some(other) => {
            return Err(CommandError::type_mismatch(
                "getMore.collection",
                "string",
                other,
            ));
        }
        None => {
            return Err(CommandError::failed_to_parse(
                "BSON field 'getMore.collection' is missing but a required field",
            ));
        }
    };
    let batch_size = args::opt_non_negative(cmd, "batchSize", "getMore")?;
    Counters::add(&ctx.shared.counters.getmore, 1);
    let namespace = ns(ctx.db, &coll);
    let mut cursors = lock(&ctx.shared.cursors);
    let cursor = cursors.get_mut(&id).ok_or_else(|| {
        CommandError::new(codes::CURSOR_NOT_FOUND, format!("cursor id {id} not found"))
    })?;
    if cursor.ns != namespace {
        return Err(CommandError::new(
            13,
            format!(
                "Requested getMore on namespace '{namespace}', but cursor belongs to a different namespace {}",
                cursor.ns
            ),
        ));
    }
    let n = batch_size
        .filter(|&b| b > 0)
        .unwrap_or(usize::MAX)
        .min(cursor.remaining.len());
    let batch: Vec<Bson> = cursor.remaining.drain(..n).map(Bson::Document).collect();
    let next_id = if cursor.remaining.is_empty() {
        cursors.remove(&id);
        0
    } else {
        id
    };
    Ok(doc! {"cursor": {"nextBatch": batch, "id": next_id, "ns": namespace}, "ok": 1.0})
}

pub(super) fn kill_cursors(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    args::collection_name(cmd, "killCursors")?;
    let ids = args::opt_array(cmd, "cursors", "killCursors")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'killCursors.cursors' is missing but a required field",
        )
    })?;
    let mut killed = Vec::new();
    let mut not_found = Vec::new();
    let mut cursors = lock(&ctx.shared.cursors);
    for id in ids {
        let Bson::Int64(id) = id else {
            return Err(CommandError::type_mismatch(
                "killCursors.cursors",
                "long",
                id,
            ));
        };
        if cursors.remove(id).is_some() {
            killed.push(Bson::Int64(*id));
        } else {
            not_found.push(Bson::Int64(*id));
        }
    }
    Ok(doc! {
        "cursorsKilled": killed,
        "cursorsNotFound": not_found,
        "cursorsAlive": [],
        "cursorsUnknown": [],
        "ok": 1.0,
    })
}

pub(super) fn count(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "count")?;
    let filter = parse_filter(cmd, "query", "count")?;
    let skip = args::opt_i64(cmd, "skip", "count")?.unwrap_or(0);
    if skip < 0 {
        return Err(CommandError::bad_value(format!(
            "skip value is negative in count query: {skip}"
        )));
    }
    // A negative limit means the same as its absolute value for count.
    let limit = args::opt_i64(cmd, "limit", "count")?
        .unwrap_or(0)
        .unsigned_abs();
    let matching = match super::views::documents(ctx, coll)? {
        Some(view) => view.iter().filter(|d| filter.matches(d)).count(),
        None => ctx.with_read_storage(|storage| {
            storage
                .collection(ctx.db, coll)
                .map_or(0, |c| c.scan(&filter, 0).len())
        }),
    };
    let mut n = matching.saturating_sub(usize::try_from(skip).unwrap_or(usize::MAX));
    if limit > 0 {
        n = n.min(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(doc! {"n": i32::try_from(n).unwrap_or(i32::MAX), "ok": 1.0})
}
