//! Indexes: their specs (as `listIndexes` shows them) and, for unique ones, the entries that
//! enforce uniqueness. Non-unique indexes are metadata only: every query is a collection scan.

use std::collections::BTreeMap;
use std::fmt::Write;

use bson::{Bson, Document, doc};

use crate::query::compare::KeyValue;
use crate::query::path;

/// A unique-index violation (code 11000).
#[derive(Debug, Clone)]
pub(crate) struct DuplicateKey {
    pub(crate) index_name: String,
    // Boxed: this rides in `Err` through every write path and should stay small.
    pub(crate) key_pattern: Box<Document>,
    pub(crate) key_value: Box<Document>,
}

impl DuplicateKey {
    /// mongod's message, e.g. `E11000 duplicate key error collection: db.c index: _id_ dup key: { _id: 1 }`.
    pub(crate) fn message(&self, ns: &str) -> String {
        let mut dup = String::from("{ ");
        for (i, (k, v)) in self.key_value.iter().enumerate() {
            if i > 0 {
                dup.push_str(", ");
            }
            let _ = write!(dup, "{k}: {v}");
        }
        dup.push_str(" }");
        format!(
            "E11000 duplicate key error collection: {ns} index: {} dup key: {dup}",
            self.index_name
        )
    }
}

/// Why an index spec was refused.
#[derive(Debug, Clone)]
pub(crate) enum IndexSpecError {
    /// Building a unique index over existing duplicates.
    Duplicate(DuplicateKey),
    /// Same name, different key (86) or same key, different name/options (85), bad spec (67).
    Conflict { code: i32, errmsg: String },
}

/// One index.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) name: String,
    pub(crate) key: Document,
    pub(crate) unique: bool,
    /// The spec as `listIndexes` returns it (`v`, `key`, `name`, options).
    pub(crate) spec: Document,
    entries: BTreeMap<Vec<KeyValue>, u64>,
}

impl Index {
    /// The `_id_` index every collection has.
    pub(crate) fn id_index() -> Self {
        Self::from_spec(doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}, true)
    }

    pub(crate) fn from_spec(spec: Document, unique: bool) -> Self {
        let name = spec.get_str("name").unwrap_or_default().to_owned();
        let key = spec.get_document("key").cloned().unwrap_or_default();
        Self {
            name,
            key,
            unique,
            spec,
            entries: BTreeMap::new(),
        }
    }

    /// The index key of `doc`: the value of each key field (null when missing).
    pub(crate) fn key_of(&self, doc: &Document) -> Vec<KeyValue> {
        self.key
            .keys()
            .map(|field| KeyValue(path::get(doc, field).cloned().unwrap_or(Bson::Null)))
            .collect()
    }

    fn key_document(&self, key: &[KeyValue]) -> Document {
        self.key
            .keys()
            .zip(key)
            .map(|(f, v)| (f.clone(), v.0.clone()))
            .collect()
    }

    /// The record that already holds `doc`'s key, unless it is `except`.
    pub(crate) fn conflict(&self, doc: &Document, except: Option<u64>) -> Option<DuplicateKey> {
        if !self.unique {
            return None;
        }
        let key = self.key_of(doc);
        match self.entries.get(&key) {
            Some(&rid) if Some(rid) != except => Some(DuplicateKey {
                index_name: self.name.clone(),
                key_pattern: Box::new(self.key.clone()),
                key_value: Box::new(self.key_document(&key)),
            }),
            _ => None,
        }
    }

    pub(crate) fn add(&mut self, doc: &Document, rid: u64) {
        if self.unique {
            self.entries.insert(self.key_of(doc), rid);
        }
    }

    pub(crate) fn remove(&mut self, doc: &Document) {
        if self.unique {
            self.entries.remove(&self.key_of(doc));
        }
    }

    pub(crate) fn lookup(&self, key: &[KeyValue]) -> Option<u64> {
        self.entries.get(key).copied()
    }
}
