//! In-memory storage: databases of collections of documents with unique indexes, and the one
//! per-write hook ([`Storage::observe`]) through which persistence (and, later, an oplog for
//! change streams and replica sets) sees every change.

mod clock;
mod collection;
mod events;
mod index;
mod journal;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bson::{Bson, Document};

pub(crate) use clock::ClusterClock;
pub(crate) use collection::Collection;
pub(crate) use events::WriteEvent;
pub(crate) use index::{DuplicateKey, IndexSpecError};
pub(crate) use journal::Journal;

use crate::error::TestkitError;

/// One database: its collections by name.
#[derive(Debug, Default)]
pub(crate) struct Database {
    pub(crate) collections: BTreeMap<String, Collection>,
}

/// Everything the server stores.
#[derive(Debug, Default)]
pub(crate) struct Storage {
    pub(crate) databases: BTreeMap<String, Database>,
    journal: Option<Journal>,
    /// Replica sets only: every write advances the cluster time.
    clock: Option<Arc<ClusterClock>>,
}

impl Storage {
    /// Loads storage from a data directory (creating it), replaying its journal.
    pub(crate) fn open(dir: &Path) -> Result<Self, TestkitError> {
        let mut storage = Storage::default();
        let events = Journal::read_all(dir)?;
        for event in events {
            storage.apply_replayed(event);
        }
        storage.journal = Some(Journal::compact_and_open(dir, &storage.snapshot_events())?);
        Ok(storage)
    }

    /// Gives every later write a cluster time from `clock` (replica sets).
    pub(crate) fn set_clock(&mut self, clock: Arc<ClusterClock>) {
        self.clock = Some(clock);
    }

    /// Keeps what a restart must not lose from `old` (the storage before a reload from disk):
    /// the cluster clock, so cluster time never goes backwards.
    pub(crate) fn carry_over(&mut self, old: &mut Storage) {
        self.clock = old.clock.take();
    }

    /// The per-write hook. Every mutation goes through here exactly once, after it applied.
    fn observe(&mut self, event: impl FnOnce() -> WriteEvent) {
        if let Some(clock) = &self.clock {
            clock.tick();
        }
        if let Some(journal) = &mut self.journal {
            journal.append(&event());
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
        let stored = c.get(rid).cloned();
        if let Some(doc) = stored {
            self.observe(|| WriteEvent::Insert {
                db: db.into(),
                coll: coll.into(),
                doc,
            });
        }
        Ok(())
    }

    pub(crate) fn replace(
        &mut self,
        db: &str,
        coll: &str,
        rid: u64,
        doc: Document,
    ) -> Result<(), DuplicateKey> {
        let Some(c) = self.collection_mut(db, coll) else {
            return Ok(());
        };
        c.replace(rid, doc.clone())?;
        self.observe(|| WriteEvent::Replace {
            db: db.into(),
            coll: coll.into(),
            doc,
        });
        Ok(())
    }

    pub(crate) fn delete(&mut self, db: &str, coll: &str, rid: u64) -> Option<Document> {
        let removed = self.collection_mut(db, coll)?.remove(rid)?;
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
        self.observe(|| WriteEvent::DropCollection {
            db: db.into(),
            coll: coll.into(),
        });
        Some(removed.indexes().len())
    }

    pub(crate) fn drop_database(&mut self, db: &str) {
        if self.databases.remove(db).is_some() {
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
            self.observe(|| WriteEvent::CreateIndex {
                db: db.into(),
                coll: coll.into(),
                spec,
            });
        }
        Ok(created)
    }

    pub(crate) fn drop_index(&mut self, db: &str, coll: &str, name: &str) -> bool {
        let dropped = self
            .collection_mut(db, coll)
            .is_some_and(|c| c.drop_index(name));
        if dropped {
            self.observe(|| WriteEvent::DropIndex {
                db: db.into(),
                coll: coll.into(),
                name: name.into(),
            });
        }
        dropped
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
                    let _ = self.replace(&db, &coll, rid, doc);
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
        }
    }
}
