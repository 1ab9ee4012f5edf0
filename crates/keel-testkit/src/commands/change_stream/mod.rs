//! Change streams: `aggregate` with a first `$changeStream` stage on a collection, a database
//! or the whole deployment, and `getMore` that awaits new events up to `maxTimeMS`.
//!
//! Events come from the replica set's oplog (see `storage::oplog`). Every batch carries a
//! `postBatchResumeToken`; `resumeAfter`, `startAfter` and `startAtOperationTime` restart a
//! stream anywhere still in the oplog, and anywhere older fails with `ChangeStreamHistoryLost`
//! (286). Reference: the MongoDB change streams specification and mongod 7.0's replies.

mod expanded;
mod spec;
mod split;
mod stream;
mod token;

use std::time::Duration;

use bson::{Bson, Document, doc};

use super::{CommandError, Ctx, args, codes};
use crate::server::{Counters, Cursor, lock};
pub(crate) use spec::is_change_stream;
use spec::{Start, parse};
pub(crate) use stream::ChangeStream;
use stream::not_supported;
use token::{Kind, Position};

/// mongod's wait for a tailable, awaitData `getMore` without `maxTimeMS`.
const DEFAULT_AWAIT: Duration = Duration::from_secs(1);
/// mongod's default first batch size.
const DEFAULT_FIRST_BATCH: usize = 101;

/// Opens a change stream (`coll` is `None` for `{aggregate: 1}`).
pub(crate) fn aggregate(
    ctx: &Ctx<'_>,
    coll: Option<&str>,
    pipeline: &[Bson],
    batch_size: Option<usize>,
) -> Result<Document, CommandError> {
    if ctx.shared.replica_set.is_none() {
        return Err(not_supported());
    }
    let spec = parse(ctx.db, coll, pipeline)?;
    let (stream, batch) = {
        let storage = lock(&ctx.shared.storage);
        let position = match spec.start {
            Start::Now => Position::new(ctx.shared.clock.now(), Kind::HighWaterMark),
            Start::After(p) => p,
        };
        let mut stream = ChangeStream { spec, position };
        let batch = stream.next_batch(&storage, batch_size.unwrap_or(DEFAULT_FIRST_BATCH))?;
        (stream, batch)
    };
    let ns = stream.spec.scope.cursor_ns();
    let token = stream.position.token();
    let id = if batch.closed {
        0
    } else {
        let id = ctx.shared.next_cursor_id();
        lock(&ctx.shared.cursors).insert(
            id,
            Cursor {
                ns: ns.clone(),
                remaining: Default::default(),
                change_stream: Some(Box::new(stream)),
            },
        );
        id
    };
    Ok(doc! {
        "cursor": {
            "firstBatch": batch.events,
            "postBatchResumeToken": token,
            "id": id,
            "ns": ns,
        },
        "ok": 1.0,
    })
}

/// Whether `getMore` targets a change stream cursor (then [`get_more`] serves it).
pub(crate) fn is_stream_get_more(ctx: &Ctx<'_>, cmd: &Document) -> bool {
    match cmd.get("getMore") {
        Some(Bson::Int64(id)) => lock(&ctx.shared.cursors)
            .get(id)
            .is_some_and(|c| c.change_stream.is_some()),
        _ => false,
    }
}

/// mongod's `failGetMoreAfterCursorCheckout`: evaluated for a `getMore` whose cursor exists.
pub(crate) fn checkout_fail_point(ctx: &Ctx<'_>, cmd: &Document) -> Option<CommandError> {
    let Some(Bson::Int64(id)) = cmd.get("getMore") else {
        return None;
    };
    let change_stream = lock(&ctx.shared.cursors)
        .get(id)
        .map(|c| c.change_stream.is_some())?;
    lock(&ctx.shared.fail_points)
        .evaluate_get_more_checkout(ctx.conn.app_name.as_deref(), change_stream)
}

/// `getMore` on a change stream: returns at once when events are there, else waits for new
/// ones until `maxTimeMS` (default 1 s) and then returns an empty batch whose
/// `postBatchResumeToken` has moved to the present.
pub(crate) async fn get_more(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let Some(Bson::Int64(id)) = cmd.get("getMore") else {
        return Err(CommandError::failed_to_parse("missing cursor id"));
    };
    let id = *id;
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
    let limit = args::opt_non_negative(cmd, "batchSize", "getMore")?
        .filter(|&b| b > 0)
        .unwrap_or(usize::MAX);
    let wait = args::opt_non_negative(cmd, "maxTimeMS", "getMore")?
        .map_or(DEFAULT_AWAIT, |ms| Duration::from_millis(ms as u64));
    let deadline = tokio::time::Instant::now() + wait;
    Counters::add(&ctx.shared.counters.getmore, 1);
    let namespace = format!("{}.{coll}", ctx.db);
    loop {
        // Take the stream out of the table while scanning, so the cursor and storage locks
        // are never held together.
        let mut cursor = lock(&ctx.shared.cursors).remove(&id).ok_or_else(|| {
            CommandError::new(codes::CURSOR_NOT_FOUND, format!("cursor id {id} not found"))
        })?;
        if cursor.ns != namespace {
            let ns = cursor.ns.clone();
            lock(&ctx.shared.cursors).insert(id, cursor);
            return Err(CommandError::new(
                codes::UNAUTHORIZED,
                format!(
                    "Requested getMore on namespace '{namespace}', but cursor belongs to a \
                     different namespace {ns}"
                ),
            ));
        }
        let Some(stream) = cursor.change_stream.as_mut() else {
            return Err(CommandError::new(
                codes::CURSOR_NOT_FOUND,
                format!("cursor id {id} is not a change stream"),
            ));
        };
        let (mut woken, result) = {
            let storage = lock(&ctx.shared.storage);
            let woken = storage.oplog().map(|o| o.subscribe());
            (woken, stream.next_batch(&storage, limit))
        };
        // On an error the cursor stays removed: mongod kills a cursor whose getMore failed.
        let batch = result?;
        let token = stream.position.token();
        let done =
            !batch.events.is_empty() || batch.closed || tokio::time::Instant::now() >= deadline;
        if done {
            let next_id = if batch.closed {
                0
            } else {
                lock(&ctx.shared.cursors).insert(id, cursor);
                id
            };
            return Ok(doc! {
                "cursor": {
                    "nextBatch": batch.events,
                    "postBatchResumeToken": token,
                    "id": next_id,
                    "ns": namespace,
                },
                "ok": 1.0,
            });
        }
        lock(&ctx.shared.cursors).insert(id, cursor);
        if let Some(woken) = woken.as_mut() {
            let _ = tokio::time::timeout_at(deadline, woken.changed()).await;
        }
    }
}
