//! Offline-first sync for MongoDB on Keel: writes that succeed locally at once, a durable queue
//! uploaded exactly once when the database is reachable, and conflict policies.
//!
//! * [`Store`]: one redb file per app (replica, queue, checkpoints, conflict log, quarantine).
//! * [`SyncClient`]: built over a [`mongokeel::Keel`] and a store; uploads by itself whenever
//!   the connection state is connected, follows server changes (a change stream per
//!   subscribed collection, or polling where the server has none), publishes a [`SyncStatus`]
//!   and reports to keel-health as the component `sync:{app}`.
//! * [`SyncedCollection`]: `get`, `find`, `watch` over the local view; `insert`, `update`
//!   (field-level [`Changes`]), `replace`, `delete`, each returning once durable on disk.
//! * Conflicts: a [`ConflictPolicy`] and a [`DeleteRule`] per collection, every conflict in
//!   the log ([`Store::conflicts`]) and on [`SyncClient::conflicts`].
//!
//! The exactly-once scheme (the `_sync` record of every synced document) is described in the
//! crate README and on [`SyncRecord`].

mod client;
mod collection;
mod conflict;
mod download;
mod error;
mod health;
mod hlc;
mod operation;
mod round_error;
mod server_record;
mod state;
mod status;
mod store;
mod txn_session;
mod upload;
mod upload_batch;
mod upload_txn;

pub use client::{DownloadInfo, DownloadMode, SyncClient, SyncClientBuilder};
pub use collection::{CollectionBuilder, LocalChange, SyncedCollection, Write};
pub use conflict::{
    ConflictInput, ConflictPolicy, ConflictRecord, DeleteRule, Outcome, Resolution, ResolveFn,
    TieRule,
};
pub use error::{Result, SyncError};
pub use operation::{Changes, Operation, OperationKind};
pub use server_record::{SYNC_FIELD, SyncRecord};
pub use state::QuarantinedOperation;
pub use status::{Connectivity, SyncHealthCheck, SyncStatus};
pub use store::{CommitMode, Store};
