//! In-memory storage: databases of collections of documents with unique indexes, and the one
//! per-write hook ([`Storage::observe`]) through which persistence (and, later, an oplog for
//! change streams and replica sets) sees every change.

mod clock;
mod collection;
mod ddl;
mod events;
mod index;
mod journal;
mod oplog;
pub(crate) mod options;
pub(crate) mod views;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bson::{Bson, Document};

pub(crate) use clock::ClusterClock;
pub(crate) use collection::Collection;
pub(crate) use ddl::DdlOp;
pub(crate) use events::WriteEvent;
pub(crate) use index::{DuplicateKey, IndexSpecError};
pub(crate) use journal::Journal;
pub(crate) use oplog::{DEFAULT_OPLOG_SIZE, OpKind, Oplog, OplogEntry, ts_key};

use crate::error::TestkitError;

/// One database: its collections by name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Database {
    pub(crate) collections: BTreeMap<String, Collection>,
}

/// Everything the server stores.
#[derive(Debug, Default)]
pub(crate) struct Storage {
    pub(crate) databases: BTreeMap<String, Database>,
    journal: Option<Journal>,
    /// Replica sets only: the changes change streams report (each advances the cluster time).
    oplog: Option<Oplog>,
    /// Data was loaded from a data directory (its history is not in this oplog).
    loaded_from_disk: bool,
}

impl Storage {
    /// In-memory storage holding `databases` (no journal, no oplog): a lagging member's view.
    pub(crate) fn with_databases(databases: BTreeMap<String, Database>) -> Self {
        Self {
            databases,
            ..Self::default()
        }
    }

    /// Loads storage from a data directory (creating it), replaying its journal.
    pub(crate) fn open(dir: &Path) -> Result<Self, TestkitError> {
        let mut storage = Storage::default();
        let events = Journal::read_all(dir)?;
        storage.loaded_from_disk = !events.is_empty();
        for event in events {
            storage.apply_replayed(event);
        }
        storage.journal = Some(Journal::compact_and_open(dir, &storage.snapshot_events())?);
        Ok(storage)
    }

    /// Records later changes in an oplog of `capacity` entries, timed by `clock` (replica
    /// sets). Changes loaded from disk count as lost history.
    pub(crate) fn enable_oplog(&mut self, capacity: usize, clock: Arc<ClusterClock>) {
        self.oplog = Some(Oplog::new(capacity, clock, self.loaded_from_disk));
    }

    /// The oplog (replica sets only).
    pub(crate) fn oplog(&self) -> Option<&Oplog> {
        self.oplog.as_ref()
    }

    /// The oplog, to tag a transaction's entries (replica sets only).
    pub(crate) fn oplog_mut(&mut self) -> Option<&mut Oplog> {
        self.oplog.as_mut()
    }

    /// Keeps what a restart must not lose from `old` (the storage before a reload from disk):
    /// the oplog, as mongod's oplog is durable, and with it the cluster clock.
    pub(crate) fn carry_over(&mut self, old: &mut Storage) {
        self.oplog = old.oplog.take();
    }

    /// The per-write hook. Every mutation goes through here exactly once, after it applied.
    fn observe(&mut self, event: impl FnOnce() -> WriteEvent) {
        if let Some(journal) = &mut self.journal {
            journal.append(&event());
        }
    }

    /// Appends a change-stream entry (replica sets only); `entry` is built only then.
    fn record(&mut self, db: &str, coll: &str, entry: impl FnOnce(bool) -> OplogEntry) {
        if self.oplog.is_none() {
            return;
        }
        let current = self.collection(db, coll);
        let images = current.is_some_and(|c| c.pre_post_images);
        let uuid = current.map(|c| c.uuid);
        if let Some(oplog) = &mut self.oplog {
            let mut entry = entry(images);
            entry.collection_uuid = entry.collection_uuid.or(uuid);
            oplog.append(entry);
        }
    }

    pub(crate) fn collection(&self, db: &str, coll: &str) -> Option<&Collection> {
        self.databases.get(db)?.collections.get(coll)
    }

    pub(crate) fn collection_mut(&mut self, db: &str, coll: &str) -> Option<&mut Collection> {
        self.databases.get_mut(db)?.collections.get_mut(coll)
    }

    /// Creates the collection if needed (implicit creation on first write); returns whether it
    /// was created.
    pub(crate) fn ensure_collection(&mut self, db: &str, coll: &str) -> bool {
        if self.collection(db, coll).is_some() {
            return false;
        }
        self.databases
            .entry(db.to_owned())
            .or_default()
            .collections
            .insert(coll.to_owned(), Collection::new());
        self.record_create(db, coll);
        self.observe(|| WriteEvent::CreateCollection {
            db: db.into(),
            coll: coll.into(),
        });
        true
    }

    pub(crate) fn insert(
        &mut self,
        db: &str,
        coll: &str,
        doc: Document,
    ) -> Result<(), DuplicateKey> {
        self.ensure_collection(db, coll);
        let Some(c) = self.collection_mut(db, coll) else {
            return Ok(());
        };
        let rid = c.insert(doc)?;
        let capped = c.options.capped.is_some();
        let stored = c.get(rid).cloned();
        if let Some(doc) = stored {
            self.record(db, coll, |images| {
                crud_entry(db, coll, OpKind::Insert, None, Some(doc.clone()), images)
            });
            self.observe(|| WriteEvent::Insert {
                db: db.into(),
                coll: coll.into(),
                doc,
            });
        }
        if capped {
            self.enforce_cap(db, coll);
        }
        Ok(())
    }

    /// Replaces the document at `rid`; `replacement` says whether the client sent a whole
    /// document (a `replace` event) or update operators (an `update` event).
    pub(crate) fn replace(
        &mut self,
        db: &str,
        coll: &str,
        rid: u64,
        doc: Document,
        replacement: bool,
    ) -> Result<(), DuplicateKey> {
        let Some(c) = self.collection_mut(db, coll) else {
            return Ok(());
        };
        let before = c.replace(rid, doc.clone())?;
        self.record(db, coll, |images| {
            let kind = if replacement {
                OpKind::Replace
            } else {
                OpKind::Update(oplog::update_description(&before, &doc))
            };
            crud_entry(db, coll, kind, Some(before), Some(doc.clone()), images)
        });
        self.observe(|| WriteEvent::Replace {
            db: db.into(),
            coll: coll.into(),
            doc,
        });
        Ok(())
    }

    pub(crate) fn delete(&mut self, db: &str, coll: &str, rid: u64) -> Option<Document> {
        let removed = self.collection_mut(db, coll)?.remove(rid)?;
        self.record(db, coll, |images| {
            crud_entry(
                db,
                coll,
                OpKind::Delete,
                Some(removed.clone()),
                None,
                images,
            )
        });
        let id = removed.get("_id").cloned().unwrap_or(Bson::Null);
        self.observe(|| WriteEvent::Delete {
            db: db.into(),
            coll: coll.into(),
            id,
        });
        Some(removed)
    }

    /// Drops a collection; returns its index count if it existed.
    pub(crate) fn drop_collection(&mut self, db: &str, coll: &str) -> Option<usize> {
        let database = self.databases.get_mut(db)?;
        let removed = database.collections.remove(coll)?;
        if database.collections.is_empty() {
            self.databases.remove(db);
        }
        self.record(db, coll, |_| OplogEntry {
            collection_uuid: Some(removed.uuid),
            ..ddl_entry(db, Some(coll), OpKind::Drop)
        });
        self.observe(|| WriteEvent::DropCollection {
            db: db.into(),
            coll: coll.into(),
        });
        Some(removed.indexes().len())
    }

    pub(crate) fn drop_database(&mut self, db: &str) {
        // As mongod: one `drop` per collection, then `dropDatabase`.
        let colls: Vec<String> = self
            .databases
            .get(db)
            .map(|d| d.collections.keys().cloned().collect())
            .unwrap_or_default();
        for coll in &colls {
            self.record(db, coll, |_| ddl_entry(db, Some(coll), OpKind::Drop));
        }
        if self.databases.remove(db).is_some() {
            self.record(db, "", |_| ddl_entry(db, None, OpKind::DropDatabase));
            self.observe(|| WriteEvent::DropDatabase { db: db.into() });
        }
    }

    pub(crate) fn create_index(
        &mut self,
        db: &str,
        coll: &str,
        spec: Document,
    ) -> Result<bool, IndexSpecError> {
        let Some(c) = self.collection_mut(db, coll) else {
            return Ok(false);
        };
        let created = c.create_index(spec.clone())?;
        if created {
            self.record_create_index(db, coll, &spec);
            self.observe(|| WriteEvent::CreateIndex {
                db: db.into(),
                coll: coll.into(),
                spec,
            });
        }
        Ok(created)
    }

    pub(crate) fn drop_index(&mut self, db: &str, coll: &str, name: &str) -> bool {
        let spec = self.index_spec(db, coll, name);
        let dropped = self
            .collection_mut(db, coll)
            .is_some_and(|c| c.drop_index(name));
        if dropped {
            self.record_drop_index(db, coll, spec);
            self.observe(|| WriteEvent::DropIndex {
                db: db.into(),
                coll: coll.into(),
                name: name.into(),
            });
        }
        dropped
    }

    /// Sets `changeStreamPreAndPostImages` on an existing collection; false if it is missing.
    pub(crate) fn set_pre_post_images(&mut self, db: &str, coll: &str, enabled: bool) -> bool {
        let Some(c) = self.collection_mut(db, coll) else {
            return false;
        };
        let before = c.pre_post_images;
        c.pre_post_images = enabled;
        self.record_modify_pre_post_images(db, coll, before, enabled);
        self.observe(|| WriteEvent::CollectionOptions {
            db: db.into(),
            coll: coll.into(),
            pre_post_images: enabled,
        });
        true
    }

    /// Events that rebuild the current state from nothing (used to compact the journal).
    fn snapshot_events(&self) -> Vec<WriteEvent> {
        let mut out = Vec::new();
        for (db, database) in &self.databases {
            for (coll, c) in &database.collections {
                out.push(WriteEvent::CreateCollection {
                    db: db.clone(),
                    coll: coll.clone(),
                });
                if c.pre_post_images {
                    out.push(WriteEvent::CollectionOptions {
                        db: db.clone(),
                        coll: coll.clone(),
                        pre_post_images: true,
                    });
                }
                if c.options != options::CollectionOptions::default() {
                    out.push(WriteEvent::CreateOptions {
                        db: db.clone(),
                        coll: coll.clone(),
                        options: c.options.to_document(),
                    });
                }
                for index in c.indexes().iter().skip(1) {
                    out.push(WriteEvent::CreateIndex {
                        db: db.clone(),
                        coll: coll.clone(),
                        spec: index.spec.clone(),
                    });
                }
                for doc in c.documents() {
                    out.push(WriteEvent::Insert {
                        db: db.clone(),
                        coll: coll.clone(),
                        doc: doc.clone(),
                    });
                }
            }
        }
        out
    }

    /// Applies a journal entry without journaling it again. Entries that no longer apply
    /// (e.g. a replace for a deleted document) are skipped: the journal is a redo log.
    fn apply_replayed(&mut self, event: WriteEvent) {
        match event {
            WriteEvent::CreateCollection { db, coll } => {
                self.ensure_collection(&db, &coll);
            }
            WriteEvent::DropCollection { db, coll } => {
                self.drop_collection(&db, &coll);
            }
            WriteEvent::DropDatabase { db } => self.drop_database(&db),
            WriteEvent::Insert { db, coll, doc } => {
                let _ = self.insert(&db, &coll, doc);
            }
            WriteEvent::Replace { db, coll, doc } => {
                let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
                if let Some(rid) = self.collection(&db, &coll).and_then(|c| c.find_id(&id)) {
                    let _ = self.replace(&db, &coll, rid, doc, true);
                }
            }
            WriteEvent::Delete { db, coll, id } => {
                if let Some(rid) = self.collection(&db, &coll).and_then(|c| c.find_id(&id)) {
                    self.delete(&db, &coll, rid);
                }
            }
            WriteEvent::CreateIndex { db, coll, spec } => {
                let _ = self.create_index(&db, &coll, spec);
            }
            WriteEvent::DropIndex { db, coll, name } => {
                self.drop_index(&db, &coll, &name);
            }
            WriteEvent::CollectionOptions {
                db,
                coll,
                pre_post_images,
            } => {
                self.set_pre_post_images(&db, &coll, pre_post_images);
            }
            WriteEvent::CreateOptions { db, coll, options } => {
                if let Ok(options) = options::CollectionOptions::parse(&options) {
                    self.set_collection_options(&db, &coll, options);
                }
            }
            WriteEvent::Rename {
                db,
                coll,
                to_db,
                to_coll,
            } => {
                let _ = self.rename_collection(&db, &coll, &to_db, &to_coll, true);
            }
        }
    }
}

/// An oplog entry for a document change. `before` is the pre-image, `after` the post-image.
fn crud_entry(
    db: &str,
    coll: &str,
    kind: OpKind,
    before: Option<Document>,
    after: Option<Document>,
    images_recorded: bool,
) -> OplogEntry {
    let id = after
        .as_ref()
        .or(before.as_ref())
        .and_then(|d| d.get("_id"))
        .cloned()
        .unwrap_or(Bson::Null);
    OplogEntry {
        ts: bson::Timestamp {
            time: 0,
            increment: 0,
        },
        wall: bson::DateTime::now(),
        db: db.to_owned(),
        coll: Some(coll.to_owned()),
        kind,
        document_key: Some(bson::doc! {"_id": id}),
        post_image: after,
        pre_image: before,
        images_recorded,
        collection_uuid: None,
        txn: None,
        txn_op: 0,
    }
}

/// An oplog entry for a namespace change (`drop`, `dropDatabase`).
pub(super) fn ddl_entry(db: &str, coll: Option<&str>, kind: OpKind) -> OplogEntry {
    OplogEntry {
        ts: bson::Timestamp {
            time: 0,
            increment: 0,
        },
        wall: bson::DateTime::now(),
        db: db.to_owned(),
        coll: coll.map(str::to_owned),
        kind,
        document_key: None,
        post_image: None,
        pre_image: None,
        images_recorded: false,
        collection_uuid: None,
        txn: None,
        txn_op: 0,
    }
}
