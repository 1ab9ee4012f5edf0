//! The in-memory state a client works from: the replica, the queue, and the local view (the
//! last known server state with the pending operations re-applied in order).

use std::collections::{BTreeMap, HashMap};

use mongodb::bson::Document;
use serde::{Deserialize, Serialize};

use crate::{Operation, hlc::Hlc, operation::DocKey, server_record::ServerDoc, store::Loaded};

/// An operation the server refused for good, with its error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedOperation {
    /// The operation.
    pub operation: Operation,
    /// The server's error, as a sentence.
    pub error: String,
    /// The server's error code, when it gave one.
    pub code: Option<i32>,
    /// Wall-clock milliseconds since the Unix epoch.
    pub at_ms: i64,
}

pub(crate) struct State {
    pub(crate) next_seq: u64,
    pub(crate) hlc: Hlc,
    pub(crate) replica: HashMap<DocKey, ServerDoc>,
    pub(crate) queue: BTreeMap<u64, Operation>,
    /// The queued sequence numbers of each document, in order.
    pub(crate) by_doc: HashMap<DocKey, std::collections::BTreeSet<u64>>,
    pub(crate) view: HashMap<DocKey, Document>,
    pub(crate) quarantine: BTreeMap<u64, QuarantinedOperation>,
    pub(crate) conflicts: u64,
    pub(crate) last_sync_ms: Option<i64>,
    /// The conflict decision of each operation's last write attempt: when its reply is lost
    /// and the mark shows the write landed, this is the decision the server holds.
    pub(crate) decisions: HashMap<u64, crate::ConflictRecord>,
    /// Queued operations whose commit has not finished: not uploaded until it has (a failed
    /// commit takes them out again).
    pub(crate) in_flight: std::collections::HashSet<u64>,
    /// The queue by `(enqueued_at_ms, seq)`: the oldest pending operation without a scan (the
    /// status is published on every write). Not the queue order: a retried quarantined
    /// operation keeps its first time.
    by_age: std::collections::BTreeSet<(i64, u64)>,
}

impl State {
    pub(crate) fn from_loaded(loaded: Loaded) -> Self {
        let mut state = Self {
            next_seq: loaded.next_seq,
            hlc: Hlc::new(loaded.hlc),
            replica: loaded.replica.into_iter().collect(),
            queue: BTreeMap::new(),
            by_doc: HashMap::new(),
            view: HashMap::new(),
            quarantine: loaded
                .quarantine
                .into_iter()
                .map(|q| (q.operation.seq, q))
                .collect(),
            conflicts: loaded.conflicts,
            last_sync_ms: loaded.last_sync_ms,
            decisions: loaded.decisions.into_iter().collect(),
            in_flight: std::collections::HashSet::new(),
            by_age: std::collections::BTreeSet::new(),
        };
        for op in loaded.queue {
            state.push_op(op);
        }
        let mut keys: Vec<DocKey> = state.replica.keys().cloned().collect();
        keys.extend(state.by_doc.keys().cloned());
        for key in keys {
            state.recompute(&key);
        }
        state
    }

    pub(crate) fn push_op(&mut self, op: Operation) {
        if let Ok(key) = op.key() {
            self.by_doc.entry(key).or_default().insert(op.seq);
        }
        self.by_age.insert((op.enqueued_at_ms, op.seq));
        if let Some(replaced) = self.queue.insert(op.seq, op) {
            self.by_age.remove(&(replaced.enqueued_at_ms, replaced.seq));
        }
    }

    pub(crate) fn remove_op(&mut self, seq: u64) -> Option<Operation> {
        let op = self.queue.remove(&seq)?;
        self.by_age.remove(&(op.enqueued_at_ms, op.seq));
        if let Ok(key) = op.key()
            && let Some(seqs) = self.by_doc.get_mut(&key)
        {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.by_doc.remove(&key);
            }
        }
        Some(op)
    }

    /// Recomputes the local view of one document: server state, then every pending operation
    /// on it in queue order that the server state does not hold yet. Returns whether the view
    /// changed.
    pub(crate) fn recompute(&mut self, key: &DocKey) -> bool {
        let server = self.replica.get(key);
        let mut doc = server.and_then(|s| s.live()).cloned();
        for seq in self.by_doc.get(key).into_iter().flatten() {
            let Some(op) = self.queue.get(seq) else {
                continue;
            };
            // A download can bring the server's document with this operation already applied
            // (its mark is in `applied`) before the upload's acknowledgement takes it out of
            // the queue: applying it again would, say, count an `$inc` twice, and a batch
            // acknowledgement does not recompute the view to repair that.
            if server.is_some_and(|s| s.record.applied_seq(&op.client_id) >= Some(op.seq)) {
                continue;
            }
            doc = op.kind.apply(doc.as_ref());
        }
        self.set_view(key, doc)
    }

    /// Makes `doc` the document's view; returns whether it changed.
    fn set_view(&mut self, key: &DocKey, doc: Option<Document>) -> bool {
        if self.view.get(key) == doc.as_ref() {
            return false;
        }
        match doc {
            Some(doc) => self.view.insert(key.clone(), doc),
            None => self.view.remove(key),
        };
        true
    }

    /// Applies the queued operation `seq` (the document's last) on the document's current
    /// view, which holds every earlier one: what [`recompute`](Self::recompute) gives, in
    /// constant time. Returns whether the view changed.
    pub(crate) fn apply_on_view(&mut self, key: &DocKey, seq: u64) -> bool {
        let Some(op) = self.queue.get(&seq) else {
            return false;
        };
        let doc = op.kind.apply(self.view.get(key));
        self.set_view(key, doc)
    }

    /// The queued operations on these documents whose commit has not finished.
    pub(crate) fn not_yet_durable(&self, keys: &[DocKey]) -> Vec<u64> {
        // From the (few) commits in flight, not from every pending operation of the documents.
        let mut seqs: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|seq| {
                keys.iter()
                    .any(|key| self.by_doc.get(key).is_some_and(|s| s.contains(seq)))
            })
            .copied()
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs
    }

    pub(crate) fn oldest_pending_ms(&self) -> Option<i64> {
        self.by_age.first().map(|(ms, _)| *ms)
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{Bson, doc};

    use super::*;
    use crate::{Changes, OperationKind, server_record::SyncRecord};

    const CLIENT: &str = "client-a";

    fn increment(seq: u64) -> Operation {
        Operation {
            seq,
            client_id: CLIENT.to_owned(),
            op_id: uuid::Uuid::now_v7(),
            ns: "db.notes".to_owned(),
            doc_id: Bson::Int32(1),
            base_version: Some(1),
            base: None,
            kind: OperationKind::Update(Changes::new().inc("n", 1)),
            hlc: seq,
            enqueued_at_ms: 0,
        }
    }

    fn server(n: i32, v: i64, applied_seq: Option<i64>) -> ServerDoc {
        let mut applied = Document::new();
        if let Some(seq) = applied_seq {
            applied.insert(CLIENT, seq);
        }
        ServerDoc {
            fields: doc! { "_id": 1, "n": n },
            record: SyncRecord {
                v,
                applied,
                ..SyncRecord::default()
            },
            tracked: true,
            own_chain: None,
        }
    }

    fn state_with(server: ServerDoc, queue: Vec<Operation>) -> (State, DocKey) {
        let key = DocKey::new("db.notes", &Bson::Int32(1)).unwrap();
        let state = State::from_loaded(Loaded {
            next_seq: 10,
            hlc: 0,
            queue,
            replica: vec![(key.clone(), server)],
            quarantine: Vec::new(),
            conflicts: 0,
            last_sync_ms: None,
            decisions: Vec::new(),
        });
        (state, key)
    }

    #[test]
    fn pending_operations_apply_on_a_server_state_without_them() {
        let (state, key) = state_with(server(0, 1, None), vec![increment(1), increment(2)]);
        assert_eq!(state.view[&key], doc! { "_id": 1, "n": 2 });
    }

    #[test]
    fn operations_the_server_state_already_holds_are_not_applied_again() {
        // The server's document holds operations 1 and 2 (their acknowledgements are not
        // processed yet); operation 3 is still only local.
        let ops = vec![increment(1), increment(2), increment(3)];
        let (mut state, key) = state_with(server(0, 1, None), ops);
        assert_eq!(state.view[&key], doc! { "_id": 1, "n": 3 });
        state.replica.insert(key.clone(), server(2, 3, Some(2)));
        state.recompute(&key);
        assert_eq!(state.view[&key], doc! { "_id": 1, "n": 3 });
    }
}
