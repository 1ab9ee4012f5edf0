//! One open change stream: which oplog entries it sees, the events it builds from them (with
//! the requested full documents and pre-images), its pipeline, and its position.

use bson::{Bson, Document, doc};

use super::spec::{BeforeChange, FullDocument, Scope, StreamSpec};
use super::split;
use super::token::{Kind, Position};
use crate::commands::aggregate::run_stage;
use crate::commands::{CommandError, codes};
use crate::storage::{OpKind, OplogEntry, Storage};

/// A change stream's state, kept in its cursor between `getMore`s.
#[derive(Debug, Clone)]
pub(crate) struct ChangeStream {
    pub(crate) spec: StreamSpec,
    /// Everything up to here has been returned (or filtered out).
    pub(crate) position: Position,
}

/// What one scan produced.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) events: Vec<Bson>,
    /// An `invalidate` was reached: the cursor is closed.
    pub(crate) closed: bool,
    /// Bytes of the events so far (counted only with `$changeStreamSplitLargeEvent`).
    pub(crate) bytes: usize,
}

fn is_internal_db(db: &str) -> bool {
    matches!(db, "admin" | "config" | "local")
}

impl ChangeStream {
    /// Whether this stream reports `entry`, and whether the entry invalidates it.
    fn sees(&self, entry: &OplogEntry) -> (bool, bool) {
        if entry.kind == OpKind::Noop {
            return (false, false);
        }
        if !super::expanded::visible(entry, self.spec.expanded) {
            return (false, false);
        }
        let coll = entry.coll.as_deref();
        match &self.spec.scope {
            Scope::Collection { db, coll: c } => {
                let mine = entry.db == *db && coll == Some(c.as_str());
                (mine, mine && super::expanded::invalidates_collection(entry))
            }
            Scope::Database { db } => {
                let mine = entry.db == *db && !coll.is_some_and(|c| c.starts_with("system."));
                (mine, mine && entry.kind == OpKind::DropDatabase)
            }
            Scope::Cluster => (
                !is_internal_db(&entry.db) && !coll.is_some_and(|c| c.starts_with("system.")),
                false,
            ),
        }
    }

    /// Returns the events after the position, at most `limit`, and advances the position:
    /// to the last returned event when the limit cut the batch, else to the present (so the
    /// batch's `postBatchResumeToken` covers events the pipeline filtered out).
    pub(crate) fn next_batch(
        &mut self,
        storage: &Storage,
        limit: usize,
    ) -> Result<Batch, CommandError> {
        let Some(oplog) = storage.oplog() else {
            return Err(not_supported());
        };
        if let Some((lost, op)) = oplog.lost_entry()
            && self.position < Position::at(lost, op, Kind::Event)
        {
            return Err(CommandError::new(
                codes::CHANGE_STREAM_HISTORY_LOST,
                "Resume of change stream was not possible, as the resume point may no longer be \
                 in the oplog.",
            ));
        }
        let mut batch = Batch::default();
        if limit == 0 {
            return Ok(batch);
        }
        for entry in oplog.since(self.position.timestamp()) {
            let (event, invalidates) = self.sees(entry);
            let mut items = Vec::with_capacity(2);
            if event {
                items.push(Kind::Event);
            }
            if invalidates {
                items.push(Kind::Invalidate);
            }
            for kind in items {
                let pos = Position::at(entry.ts, entry.txn_op, kind);
                if pos <= self.position {
                    continue;
                }
                let doc = match kind {
                    Kind::Invalidate => invalidate_event(entry),
                    _ => self.event(entry, storage)?,
                };
                let out = self.apply_pipeline(doc, pos)?;
                if let Some(out) = out {
                    for (at, piece) in
                        split::pieces_after(out, pos, self.spec.split, self.position)?
                    {
                        if !split::fits(
                            &mut batch.bytes,
                            &piece,
                            batch.events.is_empty(),
                            self.spec.split,
                        ) {
                            return Ok(batch);
                        }
                        self.position = at;
                        batch.events.push(Bson::Document(piece));
                    }
                }
                self.position = pos;
                if kind == Kind::Invalidate {
                    batch.closed = true;
                    return Ok(batch);
                }
                if batch.events.len() >= limit {
                    return Ok(batch);
                }
            }
        }
        let present = Position::new(oplog.clock().now(), Kind::HighWaterMark);
        self.position = self.position.max(present);
        Ok(batch)
    }

    /// The user's stages; an event they filter out is `None`. The resume token must survive.
    fn apply_pipeline(
        &self,
        event: Document,
        pos: Position,
    ) -> Result<Option<Document>, CommandError> {
        let mut docs = vec![event];
        for stage in &self.spec.stages {
            docs = run_stage(stage, docs)?;
            if docs.is_empty() {
                return Ok(None);
            }
        }
        let out = docs.pop();
        if let Some(d) = &out
            && d.get("_id") != Some(&Bson::Document(pos.token()))
        {
            return Err(CommandError::new(
                codes::CHANGE_STREAM_FATAL_ERROR,
                "Encountered an event whose _id field, which contains the resume token, was \
                 modified by the pipeline. Modifying the _id field of an event makes it \
                 impossible to resume the stream from that point. Only transformations that \
                 retain the unmodified _id field are allowed.",
            ));
        }
        Ok(out)
    }

    /// The change event for a CRUD or drop entry, as mongod 7.0 shapes it.
    fn event(&self, entry: &OplogEntry, storage: &Storage) -> Result<Document, CommandError> {
        if let OpKind::Ddl(op) = &entry.kind {
            return Ok(super::expanded::ddl_event(entry, op, self.spec.expanded));
        }
        let op = match &entry.kind {
            OpKind::Insert => "insert",
            OpKind::Update(_) => "update",
            OpKind::Replace => "replace",
            OpKind::Delete => "delete",
            OpKind::Drop => "drop",
            OpKind::DropDatabase => "dropDatabase",
            OpKind::Ddl(op) => op.operation_type(),
            OpKind::Noop => "noop",
        };
        let mut d = doc! {
            "_id": Position::at(entry.ts, entry.txn_op, Kind::Event).token(),
            "operationType": op,
            "clusterTime": entry.ts,
        };
        super::expanded::add_collection_uuid(&mut d, entry, self.spec.expanded);
        d.insert("wallTime", entry.wall);
        let coll = entry.coll.clone().unwrap_or_default();
        match &entry.kind {
            OpKind::Insert | OpKind::Replace => {
                d.insert("fullDocument", opt(entry.post_image.clone()));
            }
            OpKind::Update(_) => match self.spec.full_document {
                FullDocument::Default => {}
                FullDocument::UpdateLookup => {
                    let key = entry.document_key.as_ref().and_then(|k| k.get("_id"));
                    let current = key.and_then(|id| {
                        let c = storage.collection(&entry.db, &coll)?;
                        c.get(c.find_id(id)?).cloned()
                    });
                    d.insert("fullDocument", opt(current));
                }
                FullDocument::WhenAvailable | FullDocument::Required => {
                    let image =
                        image(entry, entry.post_image.as_ref(), "post-image").or_else(|e| {
                            match self.spec.full_document {
                                FullDocument::Required => Err(e),
                                _ => Ok(Bson::Null),
                            }
                        })?;
                    d.insert("fullDocument", image);
                }
            },
            OpKind::Delete
            | OpKind::Drop
            | OpKind::DropDatabase
            | OpKind::Ddl(_)
            | OpKind::Noop => {}
        }
        if entry.kind == OpKind::DropDatabase {
            d.insert("ns", doc! {"db": entry.db.clone()});
        } else {
            d.insert("ns", doc! {"db": entry.db.clone(), "coll": coll});
        }
        if let Some(key) = &entry.document_key {
            d.insert("documentKey", key.clone());
        }
        if let OpKind::Update(desc) = &entry.kind {
            d.insert("updateDescription", desc.clone());
        }
        // An event of a committed transaction carries its `lsid` and `txnNumber`.
        if let Some(txn) = &entry.txn {
            d.extend((**txn).clone());
        }
        if matches!(
            entry.kind,
            OpKind::Update(_) | OpKind::Replace | OpKind::Delete
        ) {
            match self.spec.before_change {
                BeforeChange::Off => {}
                BeforeChange::WhenAvailable => {
                    let pre =
                        image(entry, entry.pre_image.as_ref(), "pre-image").unwrap_or(Bson::Null);
                    d.insert("fullDocumentBeforeChange", pre);
                }
                BeforeChange::Required => {
                    let pre = image(entry, entry.pre_image.as_ref(), "pre-image")?;
                    d.insert("fullDocumentBeforeChange", pre);
                }
            }
        }
        Ok(d)
    }
}

/// A pre- or post-image, available only if the collection recorded images at the time.
fn image(entry: &OplogEntry, doc: Option<&Document>, what: &str) -> Result<Bson, CommandError> {
    match doc {
        Some(d) if entry.images_recorded => Ok(Bson::Document(d.clone())),
        _ => Err(CommandError::new(
            codes::NO_MATCHING_DOCUMENT,
            format!(
                "Change stream was configured to require a {what} for all update, delete and \
                 replace events, but the {what} was not found for the event at {}; enable \
                 changeStreamPreAndPostImages on collection {}.{}",
                entry.ts,
                entry.db,
                entry.coll.as_deref().unwrap_or_default()
            ),
        )),
    }
}

fn opt(d: Option<Document>) -> Bson {
    d.map_or(Bson::Null, Bson::Document)
}

fn invalidate_event(entry: &OplogEntry) -> Document {
    doc! {
        "_id": Position::at(entry.ts, entry.txn_op, Kind::Invalidate).token(),
        "operationType": "invalidate",
        "clusterTime": entry.ts,
        "wallTime": entry.wall,
    }
}

/// mongod's refusal on a standalone.
pub(crate) fn not_supported() -> CommandError {
    CommandError::new(
        codes::CHANGE_STREAM_NOT_SUPPORTED,
        "The $changeStream stage is only supported on replica sets",
    )
}
