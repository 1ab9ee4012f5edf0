//! One collection: documents in insertion (natural) order plus its indexes.

use std::collections::BTreeMap;

use bson::{Bson, Document, doc};

use super::index::{DuplicateKey, Index, IndexSpecError};
use crate::commands::codes;
use crate::query::compare::KeyValue;
use crate::query::filter::Filter;

/// A collection.
#[derive(Debug, Clone)]
pub(crate) struct Collection {
    pub(crate) uuid: bson::Uuid,
    /// `changeStreamPreAndPostImages.enabled`: change streams may report pre-/post-images.
    pub(crate) pre_post_images: bool,
    /// `capped` and `validator` (`storage/options.rs`).
    pub(crate) options: super::options::CollectionOptions,
    next_record: u64,
    docs: BTreeMap<u64, Document>,
    indexes: Vec<Index>,
}

impl Collection {
    pub(crate) fn new() -> Self {
        Self {
            uuid: bson::Uuid::new(),
            pre_post_images: false,
            options: super::options::CollectionOptions::default(),
            next_record: 0,
            docs: BTreeMap::new(),
            indexes: vec![Index::id_index()],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }

    pub(crate) fn indexes(&self) -> &[Index] {
        &self.indexes
    }

    pub(crate) fn documents(&self) -> impl Iterator<Item = &Document> {
        self.docs.values()
    }

    /// Record ids and documents in natural (insertion) order.
    pub(crate) fn records(&self) -> impl Iterator<Item = (u64, &Document)> {
        self.docs.iter().map(|(rid, d)| (*rid, d))
    }

    pub(crate) fn get(&self, rid: u64) -> Option<&Document> {
        self.docs.get(&rid)
    }

    /// Record id of the document with this `_id`.
    pub(crate) fn find_id(&self, id: &Bson) -> Option<u64> {
        self.indexes[0].lookup(&[KeyValue(id.clone())])
    }

    /// Record ids of matching documents in natural order, at most `limit` (0 = all).
    pub(crate) fn scan(&self, filter: &Filter, limit: usize) -> Vec<u64> {
        // Point lookup on `_id` equality with a scalar: the common `find_one({_id})` path.
        let id_eq = filter.equalities().into_iter().find(|(p, v)| {
            *p == "_id" && !matches!(v, Bson::Array(_) | Bson::Document(_) | Bson::Null)
        });
        if let Some((_, id)) = id_eq {
            return self
                .find_id(id)
                .filter(|rid| self.docs.get(rid).is_some_and(|d| filter.matches(d)))
                .into_iter()
                .collect();
        }
        let matching = self
            .docs
            .iter()
            .filter(|(_, d)| filter.matches(d))
            .map(|(rid, _)| *rid);
        if limit == 0 {
            matching.collect()
        } else {
            matching.take(limit).collect()
        }
    }

    pub(crate) fn insert(&mut self, doc: Document) -> Result<u64, DuplicateKey> {
        if let Some(dup) = self.indexes.iter().find_map(|i| i.conflict(&doc, None)) {
            return Err(dup);
        }
        let rid = self.next_record;
        self.next_record += 1;
        for index in &mut self.indexes {
            index.add(&doc, rid);
        }
        self.docs.insert(rid, doc);
        Ok(rid)
    }

    /// Replaces the document at `rid`; returns the previous version.
    pub(crate) fn replace(&mut self, rid: u64, doc: Document) -> Result<Document, DuplicateKey> {
        if let Some(dup) = self
            .indexes
            .iter()
            .find_map(|i| i.conflict(&doc, Some(rid)))
        {
            return Err(dup);
        }
        let old = self.docs.insert(rid, doc.clone());
        if let Some(old) = &old {
            for index in &mut self.indexes {
                index.remove(old);
            }
        }
        for index in &mut self.indexes {
            index.add(&doc, rid);
        }
        Ok(old.unwrap_or_default())
    }

    pub(crate) fn remove(&mut self, rid: u64) -> Option<Document> {
        let old = self.docs.remove(&rid)?;
        for index in &mut self.indexes {
            index.remove(&old);
        }
        Some(old)
    }

    /// Adds an index; `Ok(false)` when an identical one exists.
    pub(crate) fn create_index(&mut self, spec: Document) -> Result<bool, IndexSpecError> {
        let name = spec.get_str("name").unwrap_or_default().to_owned();
        let key = spec.get_document("key").cloned().unwrap_or_default();
        let unique = spec.get_bool("unique").unwrap_or(false);
        for existing in &self.indexes {
            let same_key = existing.key == key;
            if existing.name == name {
                if same_key && existing.unique == unique {
                    return Ok(false);
                }
                let code = if same_key {
                    codes::INDEX_OPTIONS_CONFLICT
                } else {
                    codes::INDEX_KEY_SPECS_CONFLICT
                };
                return Err(IndexSpecError::Conflict {
                    code,
                    errmsg: format!(
                        "An existing index has the same name as the requested index. When index \
                         names are not specified, they are auto generated and can cause \
                         conflicts. Please refer to our documentation. Requested index: {spec}, \
                         existing index: {}",
                        existing.spec
                    ),
                });
            }
            if same_key {
                return Err(IndexSpecError::Conflict {
                    code: codes::INDEX_OPTIONS_CONFLICT,
                    errmsg: format!(
                        "Index already exists with a different name: {}",
                        existing.name
                    ),
                });
            }
        }
        let mut index = Index::from_spec(spec, unique);
        for (rid, doc) in &self.docs {
            if let Some(dup) = index.conflict(doc, None) {
                return Err(IndexSpecError::Duplicate(dup));
            }
            index.add(doc, *rid);
        }
        self.indexes.push(index);
        Ok(true)
    }

    pub(crate) fn drop_index(&mut self, name: &str) -> bool {
        match self.indexes.iter().position(|i| i.name == name) {
            Some(0) | None => false,
            Some(pos) => {
                self.indexes.remove(pos);
                true
            }
        }
    }

    /// `listCollections`' `idIndex` field.
    pub(crate) fn id_index_spec() -> Document {
        doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}
    }
}
