//! The oplog: a bounded, ordered record of the changes change streams report. Replica sets
//! only. When it is full the oldest entry falls out, and the oplog remembers how far history
//! is gone, so a stream resuming from before that point fails instead of skipping events.

use std::collections::VecDeque;
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
    /// `{lsid, txnNumber}` of the transaction whose commit wrote the entry.
    pub(crate) txn: Option<Arc<Document>>,
    /// The entry's place among its transaction's entries, which all share the commit's
    /// timestamp (mongod's `txnOpIndex`); 0 outside transactions.
    pub(crate) txn_op: u32,
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
    /// The place of the newest lost entry among its transaction's entries (see `txn_op`).
    lost_op: u32,
    /// The transaction being committed, its commit timestamp and its next entry's place:
    /// entries appended now carry them.
    committing: Option<(Arc<Document>, Timestamp, u32)>,
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
            lost_op: 0,
            committing: None,
        }
    }

    /// Entries appended from now on belong to a committing transaction (`{lsid, txnNumber}`):
    /// they share one fresh timestamp, as the entries of mongod's commit do, and are numbered
    /// in order. `None`: back to one timestamp per entry.
    pub(crate) fn set_committing(&mut self, transaction: Option<Document>) {
        self.committing = transaction.map(|t| (Arc::new(t), self.clock.tick(), 0));
    }

    pub(crate) fn clock(&self) -> &Arc<ClusterClock> {
        &self.clock
    }

    /// Records a change with a fresh cluster time.
    pub(crate) fn append(&mut self, mut entry: OplogEntry) {
        match &mut self.committing {
            Some((txn, ts, next)) => {
                entry.ts = *ts;
                entry.txn = Some(Arc::clone(txn));
                entry.txn_op = *next;
                *next += 1;
            }
            None => entry.ts = self.clock.tick(),
        }
        entry.wall = bson::DateTime::now();
        if self.entries.len() == self.capacity
            && let Some(old) = self.entries.pop_front()
        {
            self.lost_through = Some(old.ts);
            self.lost_op = old.txn_op;
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
            txn: None,
            txn_op: 0,
        });
    }

    /// A receiver that wakes on the next append.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// The newest lost entry: its timestamp and its place in its transaction (`txn_op`).
    pub(crate) fn lost_entry(&self) -> Option<(Timestamp, u32)> {
        self.lost_through.map(|ts| (ts, self.lost_op))
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
            txn: None,
            txn_op: 0,
        }
    }

    #[test]
    fn a_full_oplog_forgets_the_oldest_entry_and_remembers_the_loss() {
        let mut oplog = Oplog::new(2, Arc::new(ClusterClock::default()), false);
        assert_eq!(oplog.lost_entry().map(|(ts, _)| ts), None);
        for db in ["a", "b", "c"] {
            oplog.append(entry(db));
        }
        let first_ts = oplog.lost_entry().map(|(ts, _)| ts).unwrap();
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
    fn a_transactions_entries_share_one_timestamp_and_are_numbered() {
        let mut oplog = Oplog::new(2, Arc::new(ClusterClock::default()), false);
        oplog.append(entry("before"));
        oplog.set_committing(Some(doc! {"txnNumber": 1_i64}));
        for db in ["t0", "t1", "t2"] {
            oplog.append(entry(db));
        }
        oplog.set_committing(None);
        let zero = Timestamp {
            time: 0,
            increment: 0,
        };
        let kept: Vec<(Timestamp, u32)> = oplog.since(zero).map(|e| (e.ts, e.txn_op)).collect();
        let commit = kept[0].0;
        assert_eq!(kept, [(commit, 1), (commit, 2)]);
        assert!(oplog.since(zero).all(|e| e.txn.is_some()));
        // The window lost the transaction's first entry: resuming before it is history lost.
        assert_eq!(oplog.lost_entry(), Some((commit, 0)));
        oplog.append(entry("after"));
        assert!(ts_key(oplog.since(zero).last().unwrap().ts) > ts_key(commit));
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
