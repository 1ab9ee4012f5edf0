//! The per-document sync record kept on the server (`_sync`), which makes uploads exactly once
//! without transactions (the scheme is described in the crate README).

use mongodb::bson::{Bson, Document, doc};
use serde::{Deserialize, Serialize};

/// The field of every synced document that holds its [`SyncRecord`].
pub const SYNC_FIELD: &str = "_sync";

/// A synced document's metadata on the server, in its `_sync` field.
///
/// * `v` — the version, +1 on every write through keel-sync; every write is conditional on the
///   version it read (`{_id, "_sync.v": v}`), so two writers never overwrite each other unseen;
/// * `applied` — per client id, the highest sequence number of that client's operations applied
///   to this document, written in the same single-document write as the change. An operation is
///   already applied exactly when `applied[client] >= seq`, so a replay after a crash is
///   recognised however many other writers came since (no window of recent op ids to fall out
///   of);
/// * `hlc` — the hybrid logical clock of the last write, for last-writer-wins;
/// * `deleted` — a tombstone: the document was deleted, its last fields are kept so that
///   subscription filters still match it and every client learns of the delete.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The version.
    pub v: i64,
    /// Highest applied sequence number per client id.
    #[serde(default)]
    pub applied: Document,
    /// Hybrid logical clock of the last write.
    #[serde(default)]
    pub hlc: i64,
    /// The client of the last write.
    #[serde(default)]
    pub by: String,
    /// A tombstone.
    #[serde(default)]
    pub deleted: bool,
    /// The op id of the last write (for diagnosis).
    #[serde(default)]
    pub op: String,
}

impl SyncRecord {
    /// The highest sequence number of `client_id` applied to this document.
    pub fn applied_seq(&self, client_id: &str) -> Option<u64> {
        match self.applied.get(client_id)? {
            Bson::Int64(seq) => u64::try_from(*seq).ok(),
            Bson::Int32(seq) => u64::try_from(*seq).ok(),
            _ => None,
        }
    }
}

/// A server document split into its user fields and its record. A document written outside
/// keel-sync has no record: version 0.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServerDoc {
    pub(crate) fields: Document,
    pub(crate) record: SyncRecord,
    /// Whether the document carried a `_sync` field at all.
    pub(crate) tracked: bool,
    /// Local only (kept in the replica, never sent): versions `start..=end` were all made by
    /// this client's own acknowledged operations in a row, so a pending operation based on any
    /// of them is based on `end` (its earlier siblings' writes are not a conflict).
    pub(crate) own_chain: Option<(i64, i64)>,
}

const CHAIN_FIELD: &str = "_keel_sync_own_chain";

impl ServerDoc {
    pub(crate) fn split(mut doc: Document) -> Self {
        let (record, tracked) = match doc.remove(SYNC_FIELD) {
            Some(Bson::Document(record)) => (
                mongodb::bson::from_document(record).unwrap_or_default(),
                true,
            ),
            _ => (SyncRecord::default(), false),
        };
        Self {
            fields: doc,
            record,
            tracked,
            own_chain: None,
        }
    }

    /// The version a pending operation based on `base` is effectively based on.
    pub(crate) fn effective_base(&self, base: i64) -> i64 {
        match self.own_chain {
            Some((start, end)) if (start..=end).contains(&base) => end,
            _ => base,
        }
    }

    /// The live document, or `None` for a tombstone.
    pub(crate) fn live(&self) -> Option<&Document> {
        (!self.record.deleted).then_some(&self.fields)
    }

    pub(crate) fn join(&self) -> Document {
        let mut doc = self.fields.clone();
        let record = mongodb::bson::to_document(&self.record).unwrap_or_default();
        doc.insert(SYNC_FIELD, record);
        doc
    }

    /// The filter that matches this document only while it is unchanged.
    pub(crate) fn unchanged_filter(&self, id: &Bson) -> Document {
        if self.tracked {
            doc! { "_id": id.clone(), "_sync.v": self.record.v }
        } else {
            doc! { "_id": id.clone(), SYNC_FIELD: { "$exists": false } }
        }
    }

    pub(crate) fn to_bytes(&self) -> crate::Result<Vec<u8>> {
        let mut doc = self.join();
        if let Some((start, end)) = self.own_chain {
            doc.insert(CHAIN_FIELD, vec![start, end]);
        }
        mongodb::bson::to_vec(&doc).map_err(crate::SyncError::bson)
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> crate::Result<Self> {
        let mut doc: Document = mongodb::bson::from_slice(bytes).map_err(crate::SyncError::bson)?;
        let chain = doc.remove(CHAIN_FIELD);
        let mut server = Self::split(doc);
        if let Some(Bson::Array(chain)) = chain
            && let [Bson::Int64(start), Bson::Int64(end)] = chain.as_slice()
        {
            server.own_chain = Some((*start, *end));
        }
        Ok(server)
    }
}
