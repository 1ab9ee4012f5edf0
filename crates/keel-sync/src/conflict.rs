//! Conflict policies (server wins, client wins, last writer wins, field merge, a closure), the
//! delete-versus-update rule, and the conflict log's record.

use std::{fmt, sync::Arc};

use mongodb::bson::{Bson, Document};
use serde::{Deserialize, Serialize};

use crate::{Operation, OperationKind};

/// What the local operation, the document it was based on and the server's document are when
/// they conflict, for a [`ConflictPolicy::Custom`] closure.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictInput<'a> {
    /// The operation.
    pub operation: &'a Operation,
    /// The server document the operation was based on (`None`: absent or deleted).
    pub base: Option<&'a Document>,
    /// The document the operation would make of its base (`None`: a delete).
    pub local: Option<&'a Document>,
    /// The server's document now (`None`: deleted or absent).
    pub remote: Option<&'a Document>,
}

/// What a custom policy decides.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// Keep the server's document; drop the local operation.
    KeepRemote,
    /// Apply the local operation on top of the server's document.
    KeepLocal,
    /// Write this document.
    Use(Document),
    /// Delete the document.
    Delete,
}

/// Who wins a field changed on both sides in a [`ConflictPolicy::FieldMerge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TieRule {
    /// The server's value.
    Server,
    /// The local value.
    Client,
    /// The later write by hybrid logical clock.
    #[default]
    LastWriter,
}

/// A custom resolution: `(base, local, remote) -> Resolution`.
pub type ResolveFn = Arc<dyn Fn(&ConflictInput<'_>) -> Resolution + Send + Sync>;

/// How a collection resolves an operation whose base version is older than the server's.
#[derive(Clone, Default)]
pub enum ConflictPolicy {
    /// The server's document stays; the local operation is dropped.
    ServerWins,
    /// The local operation is applied on top of the server's document (field-level for
    /// updates: only the fields it changes are overwritten).
    ClientWins,
    /// The write with the later hybrid-logical-clock timestamp wins (not wall time).
    #[default]
    LastWriterWins,
    /// Three-way merge against the base, into embedded documents at any depth: a field changed
    /// on one side only takes that side; a field changed on both sides goes to the tie rule
    /// (unless both made it a document: then its fields are merged the same way). Arrays are
    /// merged as a unit.
    FieldMerge(TieRule),
    /// The closure decides.
    Custom(ResolveFn),
}

impl fmt::Debug for ConflictPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ConflictPolicy {
    /// A custom policy from a closure.
    pub fn custom(
        resolve: impl Fn(&ConflictInput<'_>) -> Resolution + Send + Sync + 'static,
    ) -> Self {
        Self::Custom(Arc::new(resolve))
    }

    /// A short stable name, for the conflict log.
    pub fn name(&self) -> &'static str {
        match self {
            ConflictPolicy::ServerWins => "server_wins",
            ConflictPolicy::ClientWins => "client_wins",
            ConflictPolicy::LastWriterWins => "last_writer_wins",
            ConflictPolicy::FieldMerge(_) => "field_merge",
            ConflictPolicy::Custom(_) => "custom",
        }
    }
}

/// What happens when a delete meets an update made meanwhile on the other side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeleteRule {
    /// The delete wins: a local delete removes a document changed on the server, a local
    /// update of a document deleted on the server is dropped (the tombstone stays).
    #[default]
    DeleteWins,
    /// The update wins: a local delete of a document changed on the server is dropped, a
    /// local update resurrects a document deleted on the server.
    UpdateWins,
}

/// How a conflict ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The server's document stayed; the local operation was dropped.
    KeptRemote,
    /// The local operation was applied on top of the server's document.
    KeptLocal,
    /// A merged document was written.
    Merged,
    /// The document was deleted.
    Deleted,
}

/// One conflict, as in the conflict log and on the conflict stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConflictRecord {
    /// Conflict number in this store, from 1.
    pub id: u64,
    /// The local operation.
    pub operation: Operation,
    /// The server's version when the conflict was found.
    pub remote_version: i64,
    /// The server's document then (`None`: deleted or absent).
    pub remote: Option<Document>,
    /// The document written (`None`: deleted, or nothing written when the server's stayed).
    pub result: Option<Document>,
    /// The policy or rule that decided.
    pub decided_by: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall-clock milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// What to write for a conflicting operation: `None` keeps the server's document.
pub(crate) struct Decision {
    /// `Some(Some(doc))` write doc, `Some(None)` delete, `None` keep remote.
    pub(crate) write: Option<Option<Document>>,
    pub(crate) outcome: Outcome,
    pub(crate) decided_by: &'static str,
}

impl Decision {
    fn keep_remote(by: &'static str) -> Self {
        Self {
            write: None,
            outcome: Outcome::KeptRemote,
            decided_by: by,
        }
    }
    fn write(doc: Option<Document>, outcome: Outcome, by: &'static str) -> Self {
        let outcome = if doc.is_none() {
            Outcome::Deleted
        } else {
            outcome
        };
        Self {
            write: Some(doc),
            outcome,
            decided_by: by,
        }
    }
}

/// Decides a conflict. `remote` is the server's live document (`None` if deleted or absent),
/// `remote_fields` its last fields even when it is a tombstone, `remote_hlc` its clock.
pub(crate) fn decide(
    policy: &ConflictPolicy,
    delete_rule: DeleteRule,
    op: &Operation,
    remote: Option<&Document>,
    remote_fields: Option<&Document>,
    remote_hlc: u64,
    remote_by: &str,
) -> Decision {
    let base = op.base.as_ref();
    let local = op.kind.apply(base);
    let on_remote = op.kind.apply(remote);
    // Deletes against updates first: a documented rule, not the policy.
    let local_delete = matches!(op.kind, OperationKind::Delete);
    if local_delete && remote.is_some() {
        return match delete_rule {
            DeleteRule::DeleteWins => Decision::write(None, Outcome::Deleted, "delete_wins"),
            DeleteRule::UpdateWins => Decision::keep_remote("update_wins"),
        };
    }
    if local_delete {
        // Deleted on both sides: nothing to do.
        return Decision::keep_remote("deleted_on_both_sides");
    }
    if remote.is_none() && base.is_some() {
        return match delete_rule {
            DeleteRule::DeleteWins => Decision::keep_remote("delete_wins"),
            DeleteRule::UpdateWins => {
                let revived = match &op.kind {
                    OperationKind::Update(_) => op.kind.apply(remote_fields),
                    _ => local.clone(),
                };
                Decision::write(revived, Outcome::KeptLocal, "update_wins")
            }
        };
    }
    let local_wins_by_clock = (op.hlc, op.client_id.as_str()) > (remote_hlc, remote_by);
    match policy {
        ConflictPolicy::ServerWins => Decision::keep_remote("server_wins"),
        ConflictPolicy::ClientWins => Decision::write(on_remote, Outcome::KeptLocal, "client_wins"),
        ConflictPolicy::LastWriterWins => {
            if local_wins_by_clock {
                Decision::write(on_remote, Outcome::KeptLocal, "last_writer_wins")
            } else {
                Decision::keep_remote("last_writer_wins")
            }
        }
        ConflictPolicy::FieldMerge(tie) => {
            let empty = Document::new();
            let merged = merge(
                base.unwrap_or(&empty),
                local.as_ref().unwrap_or(&empty),
                remote.unwrap_or(&empty),
                match tie {
                    TieRule::Server => false,
                    TieRule::Client => true,
                    TieRule::LastWriter => local_wins_by_clock,
                },
            );
            if Some(&merged) == remote {
                Decision::keep_remote("field_merge")
            } else {
                Decision::write(Some(merged), Outcome::Merged, "field_merge")
            }
        }
        ConflictPolicy::Custom(resolve) => {
            let input = ConflictInput {
                operation: op,
                base,
                local: local.as_ref(),
                remote,
            };
            match resolve(&input) {
                Resolution::KeepRemote => Decision::keep_remote("custom"),
                Resolution::KeepLocal => Decision::write(on_remote, Outcome::KeptLocal, "custom"),
                Resolution::Use(mut doc) => {
                    doc.insert("_id", op.doc_id.clone());
                    doc.remove(crate::server_record::SYNC_FIELD);
                    Decision::write(Some(doc), Outcome::Merged, "custom")
                }
                Resolution::Delete => Decision::write(None, Outcome::Deleted, "custom"),
            }
        }
    }
}

/// Three-way merge against the base, recursive into embedded documents: a field changed on one
/// side only (at any depth) takes that side; a field changed on both sides to different values
/// takes `local_wins_ties`'s side, unless both are embedded documents, which are merged field
/// by field the same way. Arrays (and every other value) are merged as a unit.
pub(crate) fn merge(
    base: &Document,
    local: &Document,
    remote: &Document,
    local_wins_ties: bool,
) -> Document {
    let mut merged = Document::new();
    let mut keys: Vec<&String> = remote.keys().collect();
    for key in local.keys().chain(base.keys()) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for key in keys {
        let b = base.get(key);
        let l = local.get(key);
        let r = remote.get(key);
        let chosen: Option<Bson> = if l == b {
            r.cloned()
        } else if r == b || l == r {
            l.cloned()
        } else if let (Some(Bson::Document(l)), Some(Bson::Document(r))) = (l, r) {
            // Changed on both sides below this field: merge its fields (a base that was not a
            // document, or absent, counts as an empty one).
            let empty = Document::new();
            let b = match b {
                Some(Bson::Document(b)) => b,
                _ => &empty,
            };
            Some(Bson::Document(merge(b, l, r, local_wins_ties)))
        } else if local_wins_ties {
            l.cloned()
        } else {
            r.cloned()
        };
        if let Some(value) = chosen {
            merged.insert(key.clone(), value);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn field_merge_takes_each_side_s_own_changes_and_settles_ties() {
        let base = doc! { "_id": 1, "a": 1, "b": 1, "c": 1, "gone": 1 };
        let local = doc! { "_id": 1, "a": 2, "b": 1, "c": 5, "gone": 1 };
        let remote = doc! { "_id": 1, "a": 1, "b": 3, "c": 6 };
        assert_eq!(
            merge(&base, &local, &remote, false),
            doc! { "_id": 1, "a": 2, "b": 3, "c": 6 }
        );
        assert_eq!(
            merge(&base, &local, &remote, true),
            doc! { "_id": 1, "a": 2, "b": 3, "c": 5 }
        );
    }

    #[test]
    fn field_merge_goes_into_embedded_documents() {
        let base = doc! { "_id": 1, "addr": { "city": "Oslo", "zip": "0150", "geo": { "lat": 1, "lon": 2 } }, "tags": [1, 2] };
        let local = doc! { "_id": 1, "addr": { "city": "Bergen", "zip": "0150", "geo": { "lat": 5, "lon": 2 } }, "tags": [1, 2, 3] };
        let remote = doc! { "_id": 1, "addr": { "city": "Oslo", "zip": "0151", "geo": { "lat": 1, "lon": 9 } }, "tags": [2] };
        // Each side's own nested changes are kept; the array changed on both sides is a tie,
        // settled whole.
        assert_eq!(
            merge(&base, &local, &remote, false),
            doc! { "_id": 1, "addr": { "city": "Bergen", "zip": "0151", "geo": { "lat": 5, "lon": 9 } }, "tags": [2] }
        );
        assert_eq!(
            merge(&base, &local, &remote, true),
            doc! { "_id": 1, "addr": { "city": "Bergen", "zip": "0151", "geo": { "lat": 5, "lon": 9 } }, "tags": [1, 2, 3] }
        );
        // The same nested field changed on both sides goes to the tie rule; a nested field
        // removed on one side stays removed.
        let local = doc! { "_id": 1, "addr": { "city": "Bergen", "geo": { "lat": 1, "lon": 2 } } , "tags": [1, 2] };
        let remote = doc! { "_id": 1, "addr": { "city": "Trondheim", "zip": "0150", "geo": { "lat": 1, "lon": 2 }, "new": true }, "tags": [1, 2] };
        assert_eq!(
            merge(&base, &local, &remote, false),
            doc! { "_id": 1, "addr": { "city": "Trondheim", "geo": { "lat": 1, "lon": 2 }, "new": true }, "tags": [1, 2] }
        );
        assert_eq!(
            merge(&base, &local, &remote, true),
            doc! { "_id": 1, "addr": { "city": "Bergen", "geo": { "lat": 1, "lon": 2 }, "new": true }, "tags": [1, 2] }
        );
        // A field that became a document on both sides (not one in the base) merges its fields.
        let base = doc! { "_id": 1, "x": 1 };
        let local = doc! { "_id": 1, "x": { "a": 1 } };
        let remote = doc! { "_id": 1, "x": { "b": 2 } };
        assert_eq!(
            merge(&base, &local, &remote, false),
            doc! { "_id": 1, "x": { "b": 2, "a": 1 } }
        );
    }

    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Bson> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(Bson::Int32),
            "[a-z]{0,3}".prop_map(Bson::String),
            proptest::collection::vec(any::<i32>(), 0..3)
                .prop_map(|v| Bson::Array(v.into_iter().map(Bson::Int32).collect())),
        ];
        leaf.prop_recursive(3, 32, 4, |inner| {
            proptest::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|fields| Bson::Document(fields.into_iter().collect()))
        })
    }

    fn document() -> impl Strategy<Value = Document> {
        proptest::collection::btree_map("[a-d]", value(), 1..5)
            .prop_map(|fields| fields.into_iter().collect())
    }

    /// Paths of every value that is not a document (leaves), and of every document.
    fn paths(
        doc: &Document,
        prefix: &[String],
        leaves: &mut Vec<Vec<String>>,
        docs: &mut Vec<Vec<String>>,
    ) {
        for (key, value) in doc {
            let mut path = prefix.to_vec();
            path.push(key.clone());
            match value {
                Bson::Document(inner) => {
                    docs.push(path.clone());
                    paths(inner, &path, leaves, docs);
                }
                _ => leaves.push(path),
            }
        }
    }

    fn edit(doc: &mut Document, path: &[String], value: Option<Bson>) {
        let (last, parents) = path.split_last().unwrap();
        let mut at = doc;
        for key in parents {
            at = at.get_document_mut(key).unwrap();
        }
        match value {
            Some(value) => at.insert(last.clone(), value),
            None => at.remove(last),
        };
    }

    /// A canonical form: key order does not matter to a merge.
    fn sorted(doc: &Document) -> Document {
        let mut fields: Vec<(String, Bson)> = doc
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Bson::Document(d) => Bson::Document(sorted(d)),
                    other => other.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.into_iter().collect()
    }

    proptest! {
        /// Random nested documents; each leaf is left alone, changed or removed on one side, or
        /// changed on both; each side also adds fields to the root and to embedded documents.
        /// The merge has every one-sided change at its depth and the tie rule's value where
        /// both changed.
        #[test]
        fn a_merge_keeps_every_one_sided_change_at_any_depth(
            base in document(),
            choices in proptest::collection::vec(0..4_u8, 32),
            removals in proptest::collection::vec(any::<bool>(), 32),
            adds in proptest::collection::vec(0..3_u8, 8),
            local_wins_ties in any::<bool>(),
        ) {
            let (mut leaves, mut docs) = (Vec::new(), Vec::new());
            paths(&base, &[], &mut leaves, &mut docs);
            let (mut local, mut remote, mut expected) = (base.clone(), base.clone(), base.clone());
            for (i, path) in leaves.iter().enumerate() {
                let remove = removals[i % removals.len()];
                let lv = Bson::String(format!("L{i}"));
                let rv = Bson::String(format!("R{i}"));
                match choices[i % choices.len()] {
                    1 => {
                        let v = (!remove).then_some(lv);
                        edit(&mut local, path, v.clone());
                        edit(&mut expected, path, v);
                    }
                    2 => {
                        let v = (!remove).then_some(rv);
                        edit(&mut remote, path, v.clone());
                        edit(&mut expected, path, v);
                    }
                    3 => {
                        edit(&mut local, path, Some(lv.clone()));
                        edit(&mut remote, path, Some(rv.clone()));
                        edit(&mut expected, path, Some(if local_wins_ties { lv } else { rv }));
                    }
                    _ => {}
                }
            }
            let mut parents = vec![Vec::new()];
            parents.extend(docs);
            for (i, parent) in parents.iter().enumerate() {
                let mut path = parent.clone();
                match adds[i % adds.len()] {
                    1 => {
                        path.push(format!("added_by_local_{i}"));
                        edit(&mut local, &path, Some(Bson::Int32(1)));
                        edit(&mut expected, &path, Some(Bson::Int32(1)));
                    }
                    2 => {
                        path.push(format!("added_by_remote_{i}"));
                        edit(&mut remote, &path, Some(Bson::Int32(2)));
                        edit(&mut expected, &path, Some(Bson::Int32(2)));
                    }
                    _ => {}
                }
            }
            let merged = merge(&base, &local, &remote, local_wins_ties);
            prop_assert_eq!(sorted(&merged), sorted(&expected));
            // One side unchanged: the other side whole.
            prop_assert_eq!(sorted(&merge(&base, &base, &remote, local_wins_ties)), sorted(&remote));
            prop_assert_eq!(sorted(&merge(&base, &local, &base, local_wins_ties)), sorted(&local));
        }
    }
}
