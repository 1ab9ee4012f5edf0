//! The queued `Operation` (client id, sequence number, op id, base version, kind) and how each
//! kind applies to a document.

use mongodb::bson::{Bson, Document};
use serde::{Deserialize, Serialize};

use crate::{Result, SyncError};

/// A collection's namespace and a document's `_id`: the key of a synced document.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DocKey {
    /// `db.collection`.
    pub(crate) ns: String,
    /// The BSON bytes of `{_id: <id>}`: equal ids give equal bytes.
    pub(crate) id: Vec<u8>,
}

impl DocKey {
    pub(crate) fn new(ns: &str, id: &Bson) -> Result<Self> {
        let mut wrapped = Document::new();
        wrapped.insert("_id", id.clone());
        let id = mongodb::bson::to_vec(&wrapped).map_err(SyncError::bson)?;
        Ok(Self {
            ns: ns.to_owned(),
            id,
        })
    }

    /// The store key: the namespace, a zero byte, the id bytes.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.ns.len() + 1 + self.id.len());
        key.extend_from_slice(self.ns.as_bytes());
        key.push(0);
        key.extend_from_slice(&self.id);
        key
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let zero = bytes.iter().position(|b| *b == 0)?;
        let ns = std::str::from_utf8(&bytes[..zero]).ok()?.to_owned();
        Some(Self {
            ns,
            id: bytes[zero + 1..].to_vec(),
        })
    }
}

/// Field-level changes to a document, applied in this order: `$set`, `$unset`, `$inc`.
///
/// Paths are top-level field names or dotted paths into embedded documents.
///
/// ```
/// use keel_sync::Changes;
/// let changes = Changes::new().set("title", "Groceries").unset("draft").inc("edits", 1);
/// assert!(!changes.is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Fields to set.
    #[serde(default)]
    pub set: Document,
    /// Fields to remove.
    #[serde(default)]
    pub unset: Vec<String>,
    /// Numeric fields to increment (a missing field counts as 0).
    #[serde(default)]
    pub inc: Document,
}

impl Changes {
    /// No changes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `path` to `value`.
    #[must_use]
    pub fn set(mut self, path: &str, value: impl Into<Bson>) -> Self {
        self.set.insert(path, value.into());
        self
    }

    /// Removes `path`.
    #[must_use]
    pub fn unset(mut self, path: &str) -> Self {
        self.unset.push(path.to_owned());
        self
    }

    /// Adds `by` to the number at `path`.
    #[must_use]
    pub fn inc(mut self, path: &str, by: impl Into<Bson>) -> Self {
        self.inc.insert(path, by.into());
        self
    }

    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.unset.is_empty() && self.inc.is_empty()
    }

    /// Checks the changes before they are queued: no `_id` change, no `_sync` field, numbers
    /// for `$inc`.
    pub(crate) fn validate(&self) -> Result<()> {
        let paths = self
            .set
            .keys()
            .chain(self.unset.iter())
            .chain(self.inc.keys());
        for path in paths {
            let top = path.split('.').next().unwrap_or(path);
            if top == "_id" || top == crate::server_record::SYNC_FIELD || path.is_empty() {
                return Err(SyncError::InvalidChange(format!(
                    "the path `{path}` cannot be changed: `_id` is fixed and `_sync` belongs to keel-sync"
                )));
            }
        }
        for (path, by) in &self.inc {
            if !is_number(by) {
                return Err(SyncError::InvalidChange(format!(
                    "`$inc` of `{path}` needs a number, not {by}"
                )));
            }
        }
        Ok(())
    }

    /// Applies the changes to `doc`. A `$inc` on a value that is not a number leaves it as it
    /// is (the server would refuse it; the check happened at enqueue time against the view).
    pub(crate) fn apply(&self, doc: &mut Document) {
        for (path, value) in &self.set {
            set_path(doc, path, value.clone());
        }
        for path in &self.unset {
            unset_path(doc, path);
        }
        for (path, by) in &self.inc {
            let current = get_path(doc, path).cloned().unwrap_or(Bson::Int32(0));
            if let Some(sum) = add(&current, by) {
                set_path(doc, path, sum);
            }
        }
    }
}

fn is_number(value: &Bson) -> bool {
    matches!(value, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))
}

fn add(a: &Bson, b: &Bson) -> Option<Bson> {
    Some(match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => match x.checked_add(*y) {
            Some(sum) => Bson::Int32(sum),
            None => Bson::Int64(i64::from(*x) + i64::from(*y)),
        },
        (Bson::Int32(x), Bson::Int64(y)) | (Bson::Int64(y), Bson::Int32(x)) => {
            Bson::Int64(i64::from(*x).wrapping_add(*y))
        }
        (Bson::Int64(x), Bson::Int64(y)) => Bson::Int64(x.wrapping_add(*y)),
        (Bson::Double(x), other) | (other, Bson::Double(x)) => Bson::Double(x + as_f64(other)?),
        _ => return None,
    })
}

fn as_f64(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(v) => Some(f64::from(*v)),
        #[allow(clippy::cast_precision_loss)]
        Bson::Int64(v) => Some(*v as f64),
        Bson::Double(v) => Some(*v),
        _ => None,
    }
}

pub(crate) fn get_path<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut current = doc.get(first)?;
    for part in parts {
        current = current.as_document()?.get(part)?;
    }
    Some(current)
}

fn set_path(doc: &mut Document, path: &str, value: Bson) {
    match path.split_once('.') {
        None => {
            doc.insert(path, value);
        }
        Some((head, rest)) => {
            if !matches!(doc.get(head), Some(Bson::Document(_))) {
                doc.insert(head, Document::new());
            }
            if let Some(Bson::Document(inner)) = doc.get_mut(head) {
                set_path(inner, rest, value);
            }
        }
    }
}

fn unset_path(doc: &mut Document, path: &str) {
    match path.split_once('.') {
        None => {
            doc.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Bson::Document(inner)) = doc.get_mut(head) {
                unset_path(inner, rest);
            }
        }
    }
}

/// What an operation does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum OperationKind {
    /// Insert a new document.
    Insert(Document),
    /// Field-level changes to an existing document.
    Update(Changes),
    /// Replace the whole document (its `_id` kept).
    Replace(Document),
    /// Delete the document.
    Delete,
}

impl OperationKind {
    /// A short stable name, for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            OperationKind::Insert(_) => "insert",
            OperationKind::Update(_) => "update",
            OperationKind::Replace(_) => "replace",
            OperationKind::Delete => "delete",
        }
    }

    /// The document after this operation, given the one before (`None`: absent or deleted).
    pub(crate) fn apply(&self, before: Option<&Document>) -> Option<Document> {
        match self {
            OperationKind::Insert(doc) | OperationKind::Replace(doc) => Some(doc.clone()),
            OperationKind::Update(changes) => before.map(|doc| {
                let mut doc = doc.clone();
                changes.apply(&mut doc);
                doc
            }),
            OperationKind::Delete => None,
        }
    }
}

/// One queued local write, as stored in the operation queue and uploaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// This client's sequence number: increasing, never reused, the queue's order.
    pub seq: u64,
    /// The writing client (a UUID kept in the store).
    pub client_id: String,
    /// A unique id for this operation (UUIDv7).
    pub op_id: uuid::Uuid,
    /// `db.collection`.
    pub ns: String,
    /// The document's `_id`.
    pub doc_id: Bson,
    /// The server version the write was based on (`None`: the document was not known).
    pub base_version: Option<i64>,
    /// The server document it was based on (`None`: absent or deleted), for three-way merges.
    pub base: Option<Document>,
    /// What it does.
    pub kind: OperationKind,
    /// Hybrid logical clock at the write, for last-writer-wins.
    pub hlc: u64,
    /// Wall-clock milliseconds since the Unix epoch at enqueue (for the oldest-pending age).
    pub enqueued_at_ms: i64,
}

impl Operation {
    pub(crate) fn key(&self) -> Result<DocKey> {
        DocKey::new(&self.ns, &self.doc_id)
    }

    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        let doc = mongodb::bson::to_document(self).map_err(SyncError::bson)?;
        mongodb::bson::to_vec(&doc).map_err(SyncError::bson)
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        decode_bytes(bytes)
    }
}

/// Decodes a stored BSON value through a `Document`, the way it was encoded (the raw
/// deserializer reads UUIDs as bytes, the document one as the strings they were written as).
pub(crate) fn decode_bytes<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let doc: Document = mongodb::bson::from_slice(bytes).map_err(SyncError::bson)?;
    mongodb::bson::from_document(doc).map_err(SyncError::bson)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn changes_set_unset_and_inc_nested_paths() {
        let mut d = doc! { "_id": 1, "a": 1, "n": { "x": 1 }, "gone": true };
        Changes::new()
            .set("a", 2)
            .set("n.y", "new")
            .unset("gone")
            .inc("n.x", 5)
            .inc("count", 1_i64)
            .apply(&mut d);
        assert_eq!(
            d,
            doc! { "_id": 1, "a": 2, "n": { "x": 6, "y": "new" }, "count": 1_i64 }
        );
    }

    #[test]
    fn changes_to_the_id_or_sync_metadata_are_refused() {
        assert!(Changes::new().set("_id", 2).validate().is_err());
        assert!(Changes::new().unset("_sync.v").validate().is_err());
        assert!(Changes::new().inc("n", "x").validate().is_err());
        assert!(Changes::new().inc("n", 1.5).validate().is_ok());
    }

    #[test]
    fn doc_keys_round_trip_through_bytes() {
        let key = DocKey::new("app.notes", &Bson::String("a\0b".into())).unwrap();
        assert_eq!(DocKey::from_bytes(&key.to_bytes()), Some(key));
    }
}
