//! `SyncError`: every way a sync call can fail, each naming what is wrong and what to do.

use std::path::PathBuf;

/// A failure of the local store or of a sync call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Another process (or another `Store` in this one) has the store file open.
    #[error(
        "the sync store {path} is open in another process; close that process or give this one its own store file"
    )]
    StoreLocked {
        /// The store file.
        path: PathBuf,
    },
    /// The store file is not a valid sync store (damaged, truncated, or another kind of file).
    #[error(
        "the sync store {path} is damaged or is not a sync store ({detail}); restore it from a backup or move it away to start with an empty store"
    )]
    StoreCorrupt {
        /// The store file.
        path: PathBuf,
        /// What the storage engine reported.
        detail: String,
    },
    /// Reading or writing the store failed (disk full, permissions, I/O error).
    #[error("the sync store could not be read or written: {0}")]
    Storage(String),
    /// The write was made on top of an earlier local write of the same document whose commit
    /// failed, so it was not stored either (it is out of the view and the queue again).
    #[error(
        "this write was made on top of an earlier local write of the same document that could not be stored, so it was not stored either; read the document again and repeat the change"
    )]
    BasedOnFailedWrite,
    /// The store stopped accepting writes after an earlier failure; reopen it.
    #[error("the sync store stopped after an earlier write failure; reopen it to continue")]
    StoreClosed,
    /// A document could not be converted to or from BSON.
    #[error("a document could not be converted to or from BSON: {0}")]
    Serialization(String),
    /// A document given to `insert` or `replace` has no `_id`.
    #[error("the document has no `_id` field; give every synced document an `_id`")]
    MissingId,
    /// `insert` of an `_id` the local view already holds.
    #[error("a document with this `_id` already exists locally; use `replace` or `update` instead")]
    AlreadyExists,
    /// `update`, `replace` or `delete` of an `_id` the local view does not hold.
    #[error("no document with this `_id` is in the local view; insert it first")]
    NotFound,
    /// A `Changes` value that cannot be applied (e.g. `$inc` of a value that is not a number).
    #[error("the changes cannot be applied: {0}")]
    InvalidChange(String),
    /// A quarantined operation with this sequence number does not exist.
    #[error("no quarantined operation has sequence number {0}")]
    NotQuarantined(u64),
    /// Invalid settings given to a builder.
    #[error("invalid sync settings: {0}")]
    Config(String),
}

impl SyncError {
    pub(crate) fn storage(error: impl std::fmt::Display) -> Self {
        Self::Storage(error.to_string())
    }

    pub(crate) fn bson(error: impl std::fmt::Display) -> Self {
        Self::Serialization(error.to_string())
    }
}

/// Short for `Result<T, SyncError>`.
pub type Result<T, E = SyncError> = std::result::Result<T, E>;
