//! The oplog: a bounded, ordered record of the changes change streams report. Replica sets
//! only. When it is full the oldest entry falls out, and the oplog remembers how far history
//! is gone, so a stream resuming from before that point fails instead of skipping events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bson::{Bson, Document, Timestamp};
use tokio::sync::watch;

use super::clock::ClusterClock;

/// The default oplog size, in entries (`--oplog-size`).
pub(crate) const DEFAULT_OPLOG_SIZE: usize = 10_000;

/// What an entry did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpKind {
    Insert,
    /// An operator update; carries mongod's `updateDescription`.
    Update(Document),
    Replace,
    Delete,
    Drop,
    DropDatabase,
    /// DDL reported only to streams opened with `showExpandedEvents` (except `Rename`, which every
    /// stream sees): see `storage/ddl.rs`.
    Ddl(super::ddl::DdlOp),
    /// The primary's periodic no-op (`op: "n"`, repl/noop_writer.cpp): no change stream reports
    /// it, but it moves their high-water mark and the end of the oplog window.
    Noop,
}

/// One change.
#[derive(Debug, Clone)]
pub(crate) struct OplogEntry {
    pub(crate) ts: Timestamp,
    pub(crate) wall: bson::DateTime,
    pub(crate) db: String,
    /// `None` for `dropDatabase`.
    pub(crate) coll: Option<String>,
    pub(crate) kind: OpKind,
    /// `{_id}` of the document (CRUD entries only).
    pub(crate) document_key: Option<Document>,
    /// The document after the change (insert, update, replace).
    pub(crate) post_image: Option<Document>,
    /// The document before the change (update, replace, delete).
    pub(crate) pre_image: Option<Document>,
    /// Whether the collection had `changeStreamPreAndPostImages` enabled, so the images may be
    /// reported as pre-/post-images (not only as `fullDocument` of inserts and replaces).
    pub(crate) images_recorded: bool,
    /// The collection's UUID (every entry but `dropDatabase`), reported as `collectionUUID` to
    /// streams opened with `showExpandedEvents`.
    pub(crate) collection_uuid: Option<bson::Uuid>,
}

/// The oplog.
#[derive(Debug)]
pub(crate) struct Oplog {
    entries: VecDeque<Arc<OplogEntry>>,
    capacity: usize,
    /// The newest timestamp whose entry is gone (fell out of the window, or was written by an
    /// earlier process whose oplog was not kept).
    lost_through: Option<Timestamp>,
    clock: Arc<ClusterClock>,
    /// Bumped on every append: waiting `getMore`s wake up.
    appended: watch::Sender<u64>,
    /// `{lsid, txnNumber}` of the transaction that wrote an entry, by the entry's timestamp
    /// (kept beside the entries so the entry type stays the same for every writer).
    transactions: BTreeMap<u64, Arc<Document>>,
    /// The transaction being committed: entries appended now carry it.
    committing: Option<Arc<Document>>,
}

impl Oplog {
    /// An empty oplog holding at most `capacity` entries. `history_lost` says that changes
    /// before now happened but are not recorded (data loaded from disk).
    pub(crate) fn new(capacity: usize, clock: Arc<ClusterClock>, history_lost: bool) -> Self {
        // Earlier processes' timestamps are unknown but not later than this second: count all
        // of it as lost, and start the clock after it.
        let lost_through = history_lost.then(|| {
            let mark = ClusterClock::end_of_this_second();
            clock.advance_to(mark);
            mark
        });
        Self {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            lost_through,
            clock,
            appended: watch::Sender::new(0),
            transactions: BTreeMap::new(),
            committing: None,
        }
    }

    /// Tags the entries appended from now on with a committing transaction's `{lsid,
    /// txnNumber}` (`None`: untagged again).
    pub(crate) fn set_committing(&mut self, transaction: Option<Document>) {
        self.committing = transaction.map(Arc::new);
    }

    /// `{lsid, txnNumber}` of the transaction that wrote the entry at `ts`, if one did.
    pub(crate) fn transaction_of(&self, ts: Timestamp) -> Option<&Document> {
        self.transactions.get(&ts_key(ts)).map(|d| &**d)
    }

    pub(crate) fn clock(&self) -> &Arc<ClusterClock> {
        &self.clock
    }

    /// Records a change with a fresh cluster time.
    pub(crate) fn append(&mut self, mut entry: OplogEntry) {
        entry.ts = self.clock.tick();
        entry.wall = bson::DateTime::now();
        if self.entries.len() == self.capacity
            && let Some(old) = self.entries.pop_front()
        {
            self.lost_through = Some(old.ts);
            self.transactions.remove(&ts_key(old.ts));
        }
        if let Some(txn) = &self.committing {
            self.transactions.insert(ts_key(entry.ts), Arc::clone(txn));
        }
        self.entries.push_back(Arc::new(entry));
        self.appended.send_modify(|n| *n += 1);
    }

    /// How many entries were ever appended (a no-op writer's "has anything happened?").
    pub(crate) fn appended_count(&self) -> u64 {
        *self.appended.borrow()
    }

    /// Appends mongod's periodic no-op, `{op: "n", ns: "", o: {msg: "periodic noop"}}`.
    pub(crate) fn append_noop(&mut self) {
        self.append(OplogEntry {
            ts: Timestamp {
                time: 0,
                increment: 0,
            },
            wall: bson::DateTime::now(),
            db: String::new(),
            coll: None,
            kind: OpKind::Noop,
            document_key: None,
            post_image: None,
            pre_image: None,
            images_recorded: false,
            collection_uuid: None,
        });
    }

    /// A receiver that wakes on the next append.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// The newest timestamp whose entry is no longer available.
    pub(crate) fn lost_through(&self) -> Option<Timestamp> {
        self.lost_through
    }

    /// Entries with a timestamp at or after `from`, oldest first.
    pub(crate) fn since(
        &self,
        from: Timestamp,
    ) -> impl DoubleEndedIterator<Item = &Arc<OplogEntry>> {
        let key = ts_key(from);
        let start = self.entries.partition_point(|e| ts_key(e.ts) < key);
        self.entries.range(start..)
    }
}

/// Orders timestamps as mongod does (time, then increment).
pub(crate) fn ts_key(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

/// mongod's `updateDescription` for an operator update: dotted paths of changed and removed
/// fields (descending into sub-documents, not arrays), and no truncated arrays.
pub(crate) fn update_description(before: &Document, after: &Document) -> Document {
    let mut updated = Document::new();
    let mut removed = Vec::new();
    diff("", before, after, &mut updated, &mut removed);
    bson::doc! {
        "updatedFields": updated,
        "removedFields": removed,
        "truncatedArrays": [],
    }
}

fn diff(prefix: &str, before: &Document, after: &Document, up: &mut Document, rm: &mut Vec<Bson>) {
    let path = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    for (k, new) in after {
        match (before.get(k), new) {
            (Some(Bson::Document(b)), Bson::Document(a)) => diff(&path(k), b, a, up, rm),
            (Some(old), _) if old == new => {}
            _ => {
                up.insert(path(k), new.clone());
            }
        }
    }
    for k in before.keys() {
        if !after.contains_key(k) {
            rm.push(Bson::String(path(k)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn entry(db: &str) -> OplogEntry {
        OplogEntry {
            ts: Timestamp {
                time: 0,
                increment: 0,
            },
            wall: bson::DateTime::now(),
            db: db.into(),
            coll: Some("c".into()),
            kind: OpKind::Insert,
            document_key: None,
            post_image: None,
            pre_image: None,
            images_recorded: false,
            collection_uuid: None,
        }
    }

    #[test]
    fn a_full_oplog_forgets_the_oldest_entry_and_remembers_the_loss() {
        let mut oplog = Oplog::new(2, Arc::new(ClusterClock::default()), false);
        assert_eq!(oplog.lost_through(), None);
        for db in ["a", "b", "c"] {
            oplog.append(entry(db));
        }
        let first_ts = oplog.lost_through().unwrap();
        let kept: Vec<&str> = oplog
            .since(Timestamp {
                time: 0,
                increment: 0,
            })
            .map(|e| e.db.as_str())
            .collect();
        assert_eq!(kept, ["b", "c"]);
        assert!(
            oplog
                .since(first_ts)
                .all(|e| ts_key(e.ts) > ts_key(first_ts))
        );
    }

    #[test]
    fn update_description_uses_dotted_paths() {
        let before = doc! {"_id": 1, "a": {"b": 1, "c": 2}, "gone": true, "same": [1]};
        let after = doc! {"_id": 1, "a": {"b": 5, "c": 2, "d": 0}, "same": [1], "new": "x"};
        assert_eq!(
            update_description(&before, &after),
            doc! {
                "updatedFields": {"a.b": 5, "a.d": 0, "new": "x"},
                "removedFields": ["gone"],
                "truncatedArrays": [],
            }
        );
    }
}
