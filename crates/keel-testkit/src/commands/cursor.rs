//! Building cursor replies (`cursor: {firstBatch|nextBatch, id, ns}`) and storing open cursors.

use std::collections::VecDeque;

use bson::{Bson, Document, doc};

use super::Ctx;
use crate::server::{Cursor, lock};

/// mongod's default first batch size for `find` and `aggregate`.
pub(crate) const DEFAULT_FIRST_BATCH: usize = 101;

/// Replies with the first batch; keeps the rest as a cursor unless `single_batch`.
pub(crate) fn first_batch(
    ctx: &Ctx<'_>,
    ns: String,
    docs: Vec<Document>,
    batch_size: Option<usize>,
    single_batch: bool,
) -> Document {
    let size = batch_size.unwrap_or(DEFAULT_FIRST_BATCH);
    let mut remaining: VecDeque<Document> = docs.into();
    let batch: Vec<Bson> = remaining
        .drain(..size.min(remaining.len()))
        .map(Bson::Document)
        .collect();
    let id = if remaining.is_empty() || single_batch {
        0
    } else {
        let id = ctx.shared.next_cursor_id();
        lock(&ctx.shared.cursors).insert(
            id,
            Cursor {
                ns: ns.clone(),
                remaining,
                change_stream: None,
            },
        );
        id
    };
    doc! {"cursor": {"firstBatch": batch, "id": id, "ns": ns}, "ok": 1.0}
}
