//! `ChangeEvent<T>`: one change as the handler sees it, with its resume token as a stable id.

use std::{
    any::{Any, TypeId},
    sync::Arc,
};

use mongodb::bson::{self as bson, Bson, Document, Timestamp, de::from_document};
use serde::de::DeserializeOwned;

use keel_core::Error;

/// What kind of change an event describes (the server's `operationType`).
///
/// The specification says drivers must not fail on a new `operationType` ("Response Format":
/// "drivers MUST NOT err when they encounter a new operationType"), hence [`Other`](Self::Other).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperationType {
    /// A document was inserted.
    Insert,
    /// A document was updated (see `update_description`).
    Update,
    /// A document was replaced.
    Replace,
    /// A document was deleted.
    Delete,
    /// A collection was dropped.
    Drop,
    /// A collection was renamed.
    Rename,
    /// A database was dropped.
    DropDatabase,
    /// The stream can no longer continue on its namespace (drop, rename, dropDatabase).
    Invalidate,
    /// A document copied by the consumer's initial snapshot (`StartFrom::Snapshot`, or
    /// `HistoryLostPolicy::Resnapshot`), not a change: `full_document` is the document.
    Snapshot,
    /// Any other operation type, by name.
    Other(String),
}

impl OperationType {
    fn parse(name: &str) -> Self {
        match name {
            "insert" => Self::Insert,
            "update" => Self::Update,
            "replace" => Self::Replace,
            "delete" => Self::Delete,
            "drop" => Self::Drop,
            "rename" => Self::Rename,
            "dropDatabase" => Self::DropDatabase,
            "invalidate" => Self::Invalidate,
            "snapshot" => Self::Snapshot,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// The namespace (`ns`) an event happened in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// The database.
    pub db: String,
    /// The collection, absent for database-wide events such as `dropDatabase`.
    pub coll: Option<String>,
}

/// One change event, typed: `full_document` and `full_document_before_change` are `T`.
///
/// Use `T = Document` for the raw form. [`event_id`](Self::event_id) is the event's resume
/// token: stable across redeliveries, so a handler can deduplicate with it (delivery is at least
/// once).
#[derive(Clone, Debug)]
pub struct ChangeEvent<T> {
    id: Document,
    /// The kind of change.
    pub operation: OperationType,
    /// Where it happened, when the server says.
    pub namespace: Option<Namespace>,
    /// The changed document's key (`{_id: …}`), for document events.
    pub document_key: Option<Document>,
    /// The cluster time of the change.
    pub cluster_time: Option<Timestamp>,
    /// The document after the change, when the server sent one (inserts, replaces, and
    /// updates with `updateLookup`/`whenAvailable`/`required`).
    pub full_document: Option<T>,
    /// The document before the change, when pre-images were asked for and exist.
    pub full_document_before_change: Option<T>,
    /// `updateDescription` of an update event.
    pub update_description: Option<Document>,
    /// The whole event as the server sent it (after the user pipeline), shared: cloning the
    /// event, or keeping it for a handler retry, does not copy it.
    pub raw: Arc<Document>,
}

impl<T> ChangeEvent<T> {
    /// The event's resume token (`_id`): a stable id for deduplication.
    pub fn event_id(&self) -> &Document {
        &self.id
    }
}

/// `T` from a sub-document. For `T = Document` the document is cloned, not sent through serde
/// (a serde round trip rebuilds every field: the largest cost per event of a raw consumer).
fn typed_from<T: DeserializeOwned + 'static>(doc: &Document) -> Result<T, bson::de::Error> {
    if TypeId::of::<T>() == TypeId::of::<Document>() {
        let any: Box<dyn Any> = Box::new(doc.clone());
        if let Ok(typed) = any.downcast::<T>() {
            return Ok(*typed);
        }
    }
    from_document(doc.clone())
}

impl<T: DeserializeOwned + 'static> ChangeEvent<T> {
    /// Parses an event document.
    ///
    /// Fails when `_id` is missing: the specification says "Drivers MUST raise an error on the
    /// first document received without a resume token (e.g. the user has removed `_id` with a
    /// pipeline stage)" ("ChangeStream"), and without it no checkpoint can be stored.
    pub fn from_document(raw: Document) -> Result<Self, Error> {
        Self::from_shared(Arc::new(raw))
    }

    /// Parses a shared event document (what a handler retry parses again, without a copy).
    pub(crate) fn from_shared(raw: Arc<Document>) -> Result<Self, Error> {
        let id = match raw.get("_id") {
            Some(Bson::Document(id)) => id.clone(),
            _ => return Err(missing_resume_token()),
        };
        let operation = OperationType::parse(raw.get_str("operationType").unwrap_or("unknown"));
        let namespace = raw.get_document("ns").ok().map(|ns| Namespace {
            db: ns.get_str("db").unwrap_or_default().to_owned(),
            coll: ns.get_str("coll").ok().map(str::to_owned),
        });
        let typed = |field: &str| -> Result<Option<T>, Error> {
            match raw.get(field) {
                Some(Bson::Document(doc)) => typed_from(doc).map(Some).map_err(|e| {
                    Error::config(format!(
                        "the change event's {field} does not match the handler's type: {e}; \
                         use Document or a type matching the collection's documents"
                    ))
                }),
                _ => Ok(None),
            }
        };
        Ok(Self {
            operation,
            namespace,
            document_key: raw.get_document("documentKey").ok().cloned(),
            cluster_time: raw.get_timestamp("clusterTime").ok(),
            full_document: typed("fullDocument")?,
            full_document_before_change: typed("fullDocumentBeforeChange")?,
            update_description: raw.get_document("updateDescription").ok().cloned(),
            id,
            raw,
        })
    }
}

/// The error for an event without `_id`, worded as the specification suggests.
pub(crate) fn missing_resume_token() -> Error {
    Error::config(
        "Cannot provide resume functionality when the resume token is missing: the consumer's \
         pipeline removed the event's _id (a $project or $unset of _id); keep _id in the pipeline",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn parses_a_typed_insert() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Order {
            _id: i32,
            qty: i32,
        }
        let raw = doc! {
            "_id": {"_data": "82AB"}, "operationType": "insert",
            "ns": {"db": "app", "coll": "orders"}, "documentKey": {"_id": 1},
            "clusterTime": Timestamp { time: 5, increment: 1 },
            "fullDocument": {"_id": 1, "qty": 3},
        };
        let event = ChangeEvent::<Order>::from_document(raw).unwrap();
        assert_eq!(event.event_id(), &doc! {"_data": "82AB"});
        assert_eq!(event.operation, OperationType::Insert);
        assert_eq!(event.full_document, Some(Order { _id: 1, qty: 3 }));
        assert_eq!(event.namespace.unwrap().coll.as_deref(), Some("orders"));
        assert_eq!(
            event.cluster_time,
            Some(Timestamp {
                time: 5,
                increment: 1
            })
        );
    }

    #[test]
    fn a_missing_id_is_a_clear_error() {
        let err =
            ChangeEvent::<Document>::from_document(doc! {"operationType": "insert"}).unwrap_err();
        assert!(err.detail().contains("resume token is missing"), "{err}");
        assert!(err.detail().contains("_id"));
    }

    #[test]
    fn unknown_operation_types_are_kept() {
        let e = ChangeEvent::<Document>::from_document(
            doc! {"_id": {"_data": "1"}, "operationType": "reshardCollection"},
        )
        .unwrap();
        assert_eq!(
            e.operation,
            OperationType::Other("reshardCollection".into())
        );
    }

    #[test]
    fn a_mismatched_type_names_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Strict {
            qty: String,
        }
        let err = ChangeEvent::<Strict>::from_document(
            doc! {"_id": {"_data": "1"}, "operationType": "insert", "fullDocument": {"qty": 1}},
        )
        .unwrap_err();
        assert!(err.detail().contains("fullDocument"), "{err}");
    }
}
