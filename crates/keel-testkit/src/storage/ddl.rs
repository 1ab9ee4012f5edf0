//! DDL in the oplog: what mongod records for `create` (explicit or implicit), `createIndexes`,
//! `dropIndexes`, `collMod` and `renameCollection`, so change streams can report them. mongod's
//! oplog `o` fields become the events' `operationDescription` (`change_stream_event_transform.cpp`,
//! `ChangeStreamDefaultEventTransformation::applyTransformation`): `create` gives the options and
//! `idIndex`, `createIndexes`/`dropIndexes` one index spec wrapped in `indexes`, `collMod` its
//! fields with the options before the change, `renameCollection` the target (`to`) and the
//! dropped target's UUID (`dropTarget`).

use bson::{Document, doc};

use super::{Collection, OpKind, OplogEntry, Storage, WriteEvent, ddl_entry};

/// One DDL change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DdlOp {
    /// `create`: the collection's options and `idIndex` (mongod's oplog `o` without `create`).
    Create(Document),
    /// `createIndexes`: the index spec as `listIndexes` shows it.
    CreateIndexes(Document),
    /// `dropIndexes`: the dropped index's spec.
    DropIndexes(Document),
    /// `collMod`: the fields changed, and `stateBeforeChange`.
    Modify {
        description: Document,
        before: Document,
    },
    /// `renameCollection` to `to_db.to_coll`; the UUID of a target it dropped.
    Rename {
        to_db: String,
        to_coll: String,
        drop_target: Option<bson::Uuid>,
    },
}

impl DdlOp {
    /// The event's `operationType`.
    pub(crate) fn operation_type(&self) -> &'static str {
        match self {
            Self::Create(_) => "create",
            Self::CreateIndexes(_) => "createIndexes",
            Self::DropIndexes(_) => "dropIndexes",
            Self::Modify { .. } => "modify",
            Self::Rename { .. } => "rename",
        }
    }

    /// Whether only streams opened with `showExpandedEvents: true` see it (every stream sees a
    /// rename, as before MongoDB 6.0).
    pub(crate) fn expanded_only(&self) -> bool {
        !matches!(self, Self::Rename { .. })
    }

    /// The `o` of mongod's oplog entry (`local.oplog.rs`, op `c`).
    pub(crate) fn oplog_command(&self, db: &str, coll: &str) -> Document {
        let mut o = match self {
            Self::Create(options) => {
                let mut o = doc! {"create": coll};
                o.extend(options.clone());
                o
            }
            Self::CreateIndexes(spec) => {
                let mut o = doc! {"createIndexes": coll};
                o.extend(spec.clone());
                o
            }
            Self::DropIndexes(spec) => {
                doc! {"dropIndexes": coll, "index": spec.get_str("name").unwrap_or_default()}
            }
            Self::Modify { description, .. } => {
                let mut o = doc! {"collMod": coll};
                o.extend(description.clone());
                o
            }
            Self::Rename { to_db, to_coll, .. } => doc! {
                "renameCollection": format!("{db}.{coll}"),
                "to": format!("{to_db}.{to_coll}"),
                "stayTemp": false,
            },
        };
        if let Self::Rename {
            drop_target: Some(uuid),
            ..
        } = self
        {
            o.insert("dropTarget", *uuid);
        }
        o
    }
}

fn entry(db: &str, coll: &str, op: DdlOp) -> OplogEntry {
    ddl_entry(db, Some(coll), OpKind::Ddl(op))
}

impl Storage {
    /// An explicit `create` with its options: one `create` entry carrying them, as mongod logs
    /// one oplog entry per `create` command.
    pub(crate) fn create_collection(
        &mut self,
        db: &str,
        coll: &str,
        pre_post_images: bool,
        more: super::options::CollectionOptions,
    ) -> bool {
        if self.collection(db, coll).is_some() {
            return false;
        }
        let mut c = Collection::new();
        c.pre_post_images = pre_post_images;
        let more_options = more.to_document();
        self.databases
            .entry(db.to_owned())
            .or_default()
            .collections
            .insert(coll.to_owned(), c);
        let mut options = Document::new();
        if pre_post_images {
            options.insert("changeStreamPreAndPostImages", doc! {"enabled": true});
        }
        options.extend(more_options.clone());
        self.record_create_with(db, coll, options);
        self.observe(|| WriteEvent::CreateCollection {
            db: db.into(),
            coll: coll.into(),
        });
        if pre_post_images {
            self.observe(|| WriteEvent::CollectionOptions {
                db: db.into(),
                coll: coll.into(),
                pre_post_images,
            });
        }
        if !more_options.is_empty() {
            self.set_collection_options(db, coll, more);
        }
        true
    }

    /// The `create` entry of an implicit creation (first write, first index).
    pub(super) fn record_create(&mut self, db: &str, coll: &str) {
        self.record_create_with(db, coll, Document::new());
    }

    fn record_create_with(&mut self, db: &str, coll: &str, mut options: Document) {
        options.insert("idIndex", Collection::id_index_spec());
        self.record(db, coll, |_| entry(db, coll, DdlOp::Create(options)));
    }

    /// The stored spec of an index, as `listIndexes` shows it.
    pub(super) fn index_spec(&self, db: &str, coll: &str, name: &str) -> Option<Document> {
        self.collection(db, coll)?
            .indexes()
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.spec.clone())
    }

    pub(super) fn record_create_index(&mut self, db: &str, coll: &str, spec: &Document) {
        let name = spec.get_str("name").unwrap_or_default();
        let stored = self
            .index_spec(db, coll, name)
            .unwrap_or_else(|| spec.clone());
        self.record(db, coll, |_| entry(db, coll, DdlOp::CreateIndexes(stored)));
    }

    pub(super) fn record_drop_index(&mut self, db: &str, coll: &str, spec: Option<Document>) {
        let spec = spec.unwrap_or_default();
        self.record(db, coll, |_| entry(db, coll, DdlOp::DropIndexes(spec)));
    }

    pub(super) fn record_modify_pre_post_images(
        &mut self,
        db: &str,
        coll: &str,
        before: bool,
        enabled: bool,
    ) {
        let options = |on: bool| {
            if on {
                doc! {"changeStreamPreAndPostImages": {"enabled": true}}
            } else {
                Document::new()
            }
        };
        let op = DdlOp::Modify {
            description: doc! {"changeStreamPreAndPostImages": {"enabled": enabled}},
            before: doc! {"collectionOptions": options(before)},
        };
        self.record(db, coll, |_| entry(db, coll, op));
    }

    /// `renameCollection`: the collection (documents, indexes, UUID) under its new name.
    /// `Err(false)` when the source is missing, `Err(true)` when the target exists and
    /// `drop_target` is false.
    pub(crate) fn rename_collection(
        &mut self,
        db: &str,
        coll: &str,
        to_db: &str,
        to_coll: &str,
        drop_target: bool,
    ) -> Result<(), bool> {
        if self.collection(db, coll).is_none() {
            return Err(false);
        }
        let target = self.collection(to_db, to_coll).map(|c| c.uuid);
        if target.is_some() && !drop_target {
            return Err(true);
        }
        let database = self.databases.get_mut(db).ok_or(false)?;
        let moved = database.collections.remove(coll).ok_or(false)?;
        if database.collections.is_empty() {
            self.databases.remove(db);
        }
        let uuid = moved.uuid;
        self.databases
            .entry(to_db.to_owned())
            .or_default()
            .collections
            .insert(to_coll.to_owned(), moved);
        let op = DdlOp::Rename {
            to_db: to_db.to_owned(),
            to_coll: to_coll.to_owned(),
            drop_target: target,
        };
        self.record(db, coll, |_| OplogEntry {
            collection_uuid: Some(uuid),
            ..entry(db, coll, op)
        });
        self.observe(|| WriteEvent::Rename {
            db: db.into(),
            coll: coll.into(),
            to_db: to_db.into(),
            to_coll: to_coll.into(),
        });
        Ok(())
    }
}
