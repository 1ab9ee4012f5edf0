//! `ChangeEvent<T>`: one change as the handler sees it, with its resume token as a stable id.

use std::{
    any::{Any, TypeId},
    ops::Deref,
    sync::{Arc, OnceLock},
};

use mongodb::bson::{self as bson, Document, RawDocument, RawDocumentBuf, Timestamp};
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

/// The whole event as the server sent it (after the user pipeline): its raw BSON, shared, and
/// a [`Document`] built from it the first time one is asked for (`Deref`), so a handler that
/// never looks at the raw event never pays for it. Cloning it, or keeping it for a handler
/// retry, does not copy it.
#[derive(Clone)]
pub struct RawEvent(Arc<RawInner>);

struct RawInner {
    bytes: RawDocumentBuf,
    parsed: OnceLock<Document>,
}

impl RawEvent {
    pub(crate) fn new(bytes: RawDocumentBuf) -> Self {
        Self(Arc::new(RawInner {
            bytes,
            parsed: OnceLock::new(),
        }))
    }

    /// A `Document` event (the consumer's snapshot events).
    pub(crate) fn from_document(doc: Document) -> Result<Self, Error> {
        let bytes = RawDocumentBuf::from_document(&doc).map_err(invalid)?;
        Ok(Self::with_document(bytes, doc))
    }

    fn with_document(bytes: RawDocumentBuf, doc: Document) -> Self {
        Self(Arc::new(RawInner {
            bytes,
            parsed: OnceLock::from(doc),
        }))
    }

    /// The event's BSON bytes.
    pub fn as_raw(&self) -> &RawDocument {
        &self.0.bytes
    }

    /// The event as a `Document` (built once, on first use).
    pub fn document(&self) -> &Document {
        // Every top-level element was read when the event was parsed (`ChangeEvent::from_raw`),
        // so only a malformed value nested in a field the consumer does not read can fail here;
        // a server does not send one. It then shows as an empty document rather than a panic.
        self.0
            .parsed
            .get_or_init(|| Document::try_from(self.0.bytes.as_ref()).unwrap_or_default())
    }
}

impl Deref for RawEvent {
    type Target = Document;
    fn deref(&self) -> &Document {
        self.document()
    }
}

impl std::fmt::Debug for RawEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.document().fmt(f)
    }
}

/// The event's `_id` (its resume token): raw, and a `Document` built on first use.
#[derive(Clone, Debug)]
struct EventId {
    bytes: RawDocumentBuf,
    parsed: OnceLock<Document>,
}

/// One change event, typed: `full_document` and `full_document_before_change` are `T`.
///
/// Use `T = Document` for the raw form. [`event_id`](Self::event_id) is the event's resume
/// token: stable across redeliveries, so a handler can deduplicate with it (delivery is at least
/// once).
#[derive(Clone, Debug)]
pub struct ChangeEvent<T> {
    id: EventId,
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
    /// event, or keeping it for a handler retry, does not copy it. Derefs to a `Document`.
    pub raw: RawEvent,
}

impl<T> ChangeEvent<T> {
    /// The event's resume token (`_id`): a stable id for deduplication.
    pub fn event_id(&self) -> &Document {
        self.id
            .parsed
            .get_or_init(|| Document::try_from(self.id.bytes.as_ref()).unwrap_or_default())
    }
}

/// `T` from a sub-document's bytes, in one pass: `Document` is built straight from the bytes,
/// any other `T` deserialized from them (no intermediate `Document`).
fn typed_from<T: DeserializeOwned + 'static>(doc: &RawDocument) -> Result<T, String> {
    if TypeId::of::<T>() == TypeId::of::<Document>() {
        let doc = Document::try_from(doc).map_err(|e| e.to_string())?;
        let any: Box<dyn Any> = Box::new(doc);
        if let Ok(typed) = any.downcast::<T>() {
            return Ok(*typed);
        }
    }
    bson::from_slice(doc.as_bytes()).map_err(|e| e.to_string())
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::config(format!(
        "the server sent a change event that is not valid BSON: {e}"
    ))
}

impl<T: DeserializeOwned + 'static> ChangeEvent<T> {
    /// Parses an event document.
    ///
    /// Fails when `_id` is missing: the specification says "Drivers MUST raise an error on the
    /// first document received without a resume token (e.g. the user has removed `_id` with a
    /// pipeline stage)" ("ChangeStream"), and without it no checkpoint can be stored.
    pub fn from_document(raw: Document) -> Result<Self, Error> {
        let bytes = RawDocumentBuf::from_document(&raw).map_err(invalid)?;
        Self::from_raw(RawEvent::with_document(bytes, raw))
    }

    /// Parses an event from its raw BSON, reading each top-level field once: the fields the
    /// event exposes are taken from the bytes, `T` is deserialized from `fullDocument`'s bytes.
    pub(crate) fn from_raw(raw: RawEvent) -> Result<Self, Error> {
        let mut id = None;
        let mut operation = None;
        let mut namespace = None;
        let mut document_key = None;
        let mut cluster_time = None;
        let mut full_document = None;
        let mut full_document_before_change = None;
        let mut update_description = None;
        let typed = |field: &str, doc: &RawDocument| -> Result<Option<T>, Error> {
            typed_from(doc).map(Some).map_err(|e| {
                Error::config(format!(
                    "the change event's {field} does not match the handler's type: {e}; use                      Document or a type matching the collection's documents"
                ))
            })
        };
        // `iter_elements` reads only each element's key and length; a value is parsed only for
        // the fields the event exposes (callgrind: half the cost of `iter`).
        for element in raw.as_raw().iter_elements() {
            let element = element.map_err(invalid)?;
            let key = element.key();
            if !matches!(
                key,
                "_id"
                    | "operationType"
                    | "ns"
                    | "documentKey"
                    | "clusterTime"
                    | "fullDocument"
                    | "fullDocumentBeforeChange"
                    | "updateDescription"
            ) {
                continue;
            }
            let value = element.value().map_err(invalid)?;
            match key {
                "_id" => id = value.as_document(),
                "operationType" => operation = value.as_str(),
                "ns" => {
                    namespace = value.as_document().map(|ns| Namespace {
                        db: ns.get_str("db").map(str::to_owned).unwrap_or_default(),
                        coll: ns.get_str("coll").ok().map(str::to_owned),
                    });
                }
                "documentKey" => {
                    if let Some(doc) = value.as_document() {
                        document_key = Some(Document::try_from(doc).map_err(invalid)?);
                    }
                }
                "clusterTime" => cluster_time = value.as_timestamp(),
                "fullDocument" => {
                    if let Some(doc) = value.as_document() {
                        full_document = typed("fullDocument", doc)?;
                    }
                }
                "fullDocumentBeforeChange" => {
                    if let Some(doc) = value.as_document() {
                        full_document_before_change = typed("fullDocumentBeforeChange", doc)?;
                    }
                }
                "updateDescription" => {
                    if let Some(doc) = value.as_document() {
                        update_description = Some(Document::try_from(doc).map_err(invalid)?);
                    }
                }
                _ => {}
            }
        }
        let Some(id) = id else {
            return Err(missing_resume_token());
        };
        let id = EventId {
            bytes: id.to_raw_document_buf(),
            parsed: OnceLock::new(),
        };
        let operation = OperationType::parse(operation.unwrap_or("unknown"));
        Ok(Self {
            id,
            operation,
            namespace,
            document_key,
            cluster_time,
            full_document,
            full_document_before_change,
            update_description,
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
    fn an_event_from_raw_bytes_reads_its_fields_and_builds_the_document_on_demand() {
        #[derive(serde::Deserialize, Debug, PartialEq, Clone)]
        struct Order {
            qty: i32,
        }
        let doc = doc! {
            "_id": {"_data": "82AB"}, "operationType": "update",
            "wallTime": mongodb::bson::DateTime::from_millis(5),
            "ns": {"db": "app", "coll": "orders"}, "documentKey": {"_id": 1},
            "updateDescription": {"updatedFields": {"qty": 4}},
            "fullDocument": {"_id": 1, "qty": 4}, "fullDocumentBeforeChange": {"qty": 3},
        };
        let raw = RawEvent::new(RawDocumentBuf::from_document(&doc).unwrap());
        let event = ChangeEvent::<Order>::from_raw(raw).unwrap();
        assert_eq!(event.event_id(), &doc! {"_data": "82AB"});
        assert_eq!(event.operation, OperationType::Update);
        assert_eq!(event.document_key, Some(doc! {"_id": 1}));
        assert_eq!(event.full_document, Some(Order { qty: 4 }));
        assert_eq!(event.full_document_before_change, Some(Order { qty: 3 }));
        assert_eq!(
            event.update_description,
            Some(doc! {"updatedFields": {"qty": 4}})
        );
        // `raw` derefs to the whole event, fields the consumer does not read included.
        assert_eq!(*event.raw, doc);
        assert!(event.raw.get_datetime("wallTime").is_ok());
        assert_eq!(
            event.raw.as_raw().get_str("operationType").unwrap(),
            "update"
        );
        let copy = event.clone();
        assert_eq!(copy.raw.document(), &doc);
    }

    #[test]
    fn invalid_bytes_are_a_clear_error() {
        let mut bytes =
            RawDocumentBuf::from_document(&doc! {"_id": {"_data": "1"}, "operationType": "insert"})
                .unwrap()
                .into_bytes();
        // Corrupt the type byte of the first element.
        bytes[4] = 0x7F;
        // The framing (lengths) is still right: only reading the elements finds it.
        let raw = RawDocumentBuf::from_bytes(bytes).unwrap();
        let err = ChangeEvent::<Document>::from_raw(RawEvent::new(raw)).unwrap_err();
        assert!(err.detail().contains("not valid BSON"), "{err}");
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
