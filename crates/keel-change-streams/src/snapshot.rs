//! The initial snapshot (`StartFrom::Snapshot`, `HistoryLostPolicy::Resnapshot`): record the
//! operation time, copy the collection's documents to the handler as `snapshot` events in `_id`
//! order, then stream from that time, so nothing falls between the copy and the stream
//! (documents changed during the copy come again as changes: at least once).
//!
//! Progress lives in the ordinary checkpoint, as a token of Keel's own shape
//! `{keelSnapshot: {at, after, done}}` (no resume token of the server has a `keelSnapshot`
//! field: they are `{_data: …}`), so every [`crate::CheckpointStore`] keeps it unchanged and a
//! restarted snapshot continues after the last copied `_id` (a range query, `_id > after`).

use keel_core::{Error, Operation};
use mongodb::bson::{Bson, Document, Timestamp, doc};
use mongokeel::Keel;

/// The field that marks a snapshot checkpoint.
const FIELD: &str = "keelSnapshot";

/// Where a snapshot stands: its operation time, the last `_id` copied, whether it finished.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SnapshotState {
    pub(crate) at: Timestamp,
    pub(crate) after: Option<Bson>,
    pub(crate) done: bool,
}

impl SnapshotState {
    /// The checkpoint token for this state (also the `event_id` of a snapshot event).
    pub(crate) fn token(&self) -> Document {
        let mut state = doc! {"at": self.at, "done": self.done};
        if let Some(after) = &self.after {
            state.insert("after", after.clone());
        }
        doc! {FIELD: state}
    }

    /// Reads a checkpoint token written by [`token`](Self::token); `None` for a server token.
    pub(crate) fn from_token(token: &Document) -> Option<Self> {
        let state = token.get_document(FIELD).ok()?;
        Some(Self {
            at: state.get_timestamp("at").ok()?,
            after: state.get("after").cloned(),
            done: state.get_bool("done").unwrap_or(false),
        })
    }
}

/// The cluster's operation time now: a snapshot's documents are at least this new, so a stream
/// from it (`startAtOperationTime`, inclusive) misses nothing the copy did not see.
pub(crate) async fn operation_time(keel: &Keel, database: &str) -> Result<Timestamp, Error> {
    let db = database.to_owned();
    let reply = keel
        .run(Operation::read("change_stream.snapshot_time", move |c| {
            let db = db.clone();
            async move { c.database(&db).run_command(doc! {"ping": 1}).await }
        }))
        .await?;
    reply.get_timestamp("operationTime").map_err(|_| {
        Error::config(
            "the server's reply has no operationTime, so no snapshot point can be recorded: \
             change streams and snapshots need a replica set or a sharded cluster",
        )
    })
}

/// The next page of documents after `after` in `_id` order.
///
/// `_id > after` compares within one BSON type (MongoDB's type bracketing), which is what a
/// collection whose `_id`s share a type needs; see the README for mixed types.
pub(crate) async fn page(
    keel: &Keel,
    database: &str,
    collection: &str,
    after: Option<&Bson>,
    limit: u32,
) -> Result<Vec<Document>, Error> {
    let filter = match after {
        Some(after) => doc! {"_id": {"$gt": after.clone()}},
        None => doc! {},
    };
    let (db, coll) = (database.to_owned(), collection.to_owned());
    keel.run(Operation::read("change_stream.snapshot_page", move |c| {
        let (db, coll, filter) = (db.clone(), coll.clone(), filter.clone());
        async move {
            use futures_util::TryStreamExt;
            c.database(&db)
                .collection::<Document>(&coll)
                .find(filter)
                .sort(doc! {"_id": 1})
                .limit(i64::from(limit))
                .await?
                .try_collect::<Vec<_>>()
                .await
        }
    }))
    .await
}

/// A copied document as a change event: `operationType: "snapshot"`, its `_id` the snapshot
/// token after it (a stable id: the same document in the same snapshot has the same one).
pub(crate) fn event(
    database: &str,
    collection: &str,
    at: Timestamp,
    document: Document,
) -> Result<(Document, Document), Error> {
    let id = document.get("_id").cloned().ok_or_else(|| {
        Error::config(format!(
            "a document of {database}.{collection} has no _id, so the snapshot cannot continue \
             after it"
        ))
    })?;
    let token = SnapshotState {
        at,
        after: Some(id.clone()),
        done: false,
    }
    .token();
    let raw = doc! {
        "_id": token.clone(),
        "operationType": "snapshot",
        "ns": {"db": database, "coll": collection},
        "documentKey": {"_id": id},
        "clusterTime": at,
        "fullDocument": document,
    };
    Ok((raw, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_tokens_round_trip_and_server_tokens_are_not_snapshots() {
        let at = Timestamp {
            time: 7,
            increment: 2,
        };
        for state in [
            SnapshotState {
                at,
                after: None,
                done: false,
            },
            SnapshotState {
                at,
                after: Some(Bson::Int32(41)),
                done: false,
            },
            SnapshotState {
                at,
                after: Some(Bson::String("k".into())),
                done: true,
            },
        ] {
            assert_eq!(SnapshotState::from_token(&state.token()), Some(state));
        }
        assert_eq!(SnapshotState::from_token(&doc! {"_data": "82AB"}), None);
    }

    #[test]
    fn a_copied_document_is_a_snapshot_event_with_its_key() {
        let at = Timestamp {
            time: 9,
            increment: 1,
        };
        let (raw, token) = event("app", "orders", at, doc! {"_id": 3, "n": 1}).unwrap();
        let parsed = crate::ChangeEvent::<Document>::from_document(raw).unwrap();
        assert_eq!(parsed.operation, crate::OperationType::Snapshot);
        assert_eq!(parsed.document_key, Some(doc! {"_id": 3}));
        assert_eq!(parsed.event_id(), &token);
        assert_eq!(parsed.cluster_time, Some(at));
        let state = SnapshotState::from_token(&token).unwrap();
        assert_eq!((state.after, state.done), (Some(Bson::Int32(3)), false));
        let missing = event("app", "orders", at, doc! {"n": 1}).unwrap_err();
        assert!(missing.to_string().contains("no _id"), "{missing}");
    }
}
