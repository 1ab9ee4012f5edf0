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
    /// Three-way merge of top-level fields against the base: a field changed on one side only
    /// takes that side; a field changed on both goes to the tie rule.
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

/// Three-way merge of top-level fields; `local_wins_ties` settles fields changed on both sides
/// to different values.
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
        let chosen: Option<&Bson> = if l == b {
            r
        } else if r == b || l == r || local_wins_ties {
            l
        } else {
            r
        };
        if let Some(value) = chosen {
            merged.insert(key.clone(), value.clone());
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
}
