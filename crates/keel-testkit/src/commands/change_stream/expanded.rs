//! `showExpandedEvents` (MongoDB 6.0+): streams opened with it also report `create`,
//! `createIndexes`, `dropIndexes` and `modify`, and every event but `dropDatabase` carries
//! `collectionUUID`; `rename` gains `operationDescription`. Shapes as mongod 7.0's
//! `ChangeStreamDefaultEventTransformation::applyTransformation`
//! (`change_stream_event_transform.cpp`): `operationDescription` is the oplog entry's `o` without
//! the command's own field, `createIndexes`/`dropIndexes` wrap the one spec in `indexes`, a
//! `modify` adds `stateBeforeChange`, a `rename` keeps its top-level `to` for older clients.
//! A stream without the option sees `rename`, `drop` and `dropDatabase` only, as before 6.0.

use bson::{Bson, Document, doc};

use super::token::{Kind, Position};
use crate::commands::CommandError;
use crate::storage::{DdlOp, OpKind, OplogEntry};

/// `$changeStream.showExpandedEvents` (default false).
pub(super) fn parse_option(options: &Document) -> Result<bool, CommandError> {
    match options.get("showExpandedEvents") {
        None | Some(Bson::Null) => Ok(false),
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(other) => Err(CommandError::type_mismatch(
            "$changeStream.showExpandedEvents",
            "bool",
            other,
        )),
    }
}

/// Whether a stream with (or without) expanded events reports this entry at all.
pub(super) fn visible(entry: &OplogEntry, expanded: bool) -> bool {
    match &entry.kind {
        OpKind::Ddl(op) => expanded || !op.expanded_only(),
        _ => true,
    }
}

/// Whether the entry ends a stream on its collection: a drop or a rename of it.
pub(super) fn invalidates_collection(entry: &OplogEntry) -> bool {
    matches!(entry.kind, OpKind::Drop | OpKind::Ddl(DdlOp::Rename { .. }))
}

/// `collectionUUID`, with expanded events only.
pub(super) fn add_collection_uuid(d: &mut Document, entry: &OplogEntry, expanded: bool) {
    if expanded && let Some(uuid) = entry.collection_uuid {
        d.insert("collectionUUID", uuid);
    }
}

/// The event of a DDL entry.
pub(super) fn ddl_event(entry: &OplogEntry, op: &DdlOp, expanded: bool) -> Document {
    let coll = entry.coll.clone().unwrap_or_default();
    let mut d = doc! {
        "_id": Position::at(entry.ts, entry.txn_op, Kind::Event).token(),
        "operationType": op.operation_type(),
        "clusterTime": entry.ts,
    };
    add_collection_uuid(&mut d, entry, expanded);
    d.insert("wallTime", entry.wall);
    d.insert("ns", doc! {"db": entry.db.clone(), "coll": coll});
    match op {
        DdlOp::Create(options) => {
            d.insert("operationDescription", options.clone());
        }
        DdlOp::CreateIndexes(spec) | DdlOp::DropIndexes(spec) => {
            d.insert("operationDescription", doc! {"indexes": [spec.clone()]});
        }
        DdlOp::Modify {
            description,
            before,
        } => {
            d.insert("operationDescription", description.clone());
            d.insert("stateBeforeChange", before.clone());
        }
        DdlOp::Rename {
            to_db,
            to_coll,
            drop_target,
        } => {
            let to = doc! {"db": to_db, "coll": to_coll};
            d.insert("to", to.clone());
            if expanded {
                let mut description = doc! {"to": to};
                if let Some(uuid) = drop_target {
                    description.insert("dropTarget", *uuid);
                }
                d.insert("operationDescription", description);
            }
        }
    }
    d
}
