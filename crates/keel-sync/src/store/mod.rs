//! `Store`: the one redb file per app holding the local replica, the operation queue, the
//! checkpoints, the conflict log and the quarantine.

mod committer;
mod tables;

use std::{
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::Arc,
};

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError};

pub use committer::CommitMode;
use committer::Committer;
pub(crate) use committer::{Durable, Mutation};
pub(crate) use tables::{CHECKPOINTS, CONFLICTS, DECISIONS, META, QUARANTINE, QUEUE, REPLICA};

use crate::{
    ConflictRecord, Operation, QuarantinedOperation, Result, SyncError, operation::DocKey,
    server_record::ServerDoc,
};

/// The local sync store: one redb file per app.
///
/// Opening a store another process holds is [`SyncError::StoreLocked`]; a damaged file is
/// [`SyncError::StoreCorrupt`]. Neither is ever reset silently.
///
/// ```no_run
/// # fn run() -> Result<(), keel_sync::SyncError> {
/// let store = keel_sync::Store::open("notes.keel-sync")?;
/// println!("{} operations wait for upload", store.pending()?.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: Arc<Database>,
    committer: Committer,
    client_id: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// Everything a client loads from the store at start.
pub(crate) struct Loaded {
    pub(crate) next_seq: u64,
    pub(crate) hlc: u64,
    pub(crate) queue: Vec<Operation>,
    pub(crate) replica: Vec<(DocKey, ServerDoc)>,
    pub(crate) quarantine: Vec<QuarantinedOperation>,
    pub(crate) conflicts: u64,
    pub(crate) last_sync_ms: Option<i64>,
    /// Conflict decisions recorded before their write was sent, by sequence number.
    pub(crate) decisions: Vec<(u64, ConflictRecord)>,
}

pub(crate) const META_CLIENT_ID: &str = "client_id";
pub(crate) const META_NEXT_SEQ: &str = "next_seq";
pub(crate) const META_HLC: &str = "hlc";
pub(crate) const META_LAST_SYNC: &str = "last_sync_ms";
/// The `lsid` of the upload transaction in flight (see `txn_session.rs`).
pub(crate) const META_TXN_SESSION: &str = "txn_session";

impl Store {
    /// Opens (or creates) the store at `path`, with group commit.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, CommitMode::Group)
    }

    /// Opens the store with the given commit mode ([`CommitMode::PerOperation`] is for
    /// comparison in benchmarks: one fsync per operation).
    pub fn open_with(path: impl AsRef<Path>, mode: CommitMode) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        // redb reports damage as an error, but its debug builds assert on some inconsistencies
        // it finds while opening; a damaged file must be an error, never a panic.
        let opened =
            std::panic::catch_unwind(AssertUnwindSafe(|| Database::builder().create(&path)));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(open_error(&path, e)),
            Err(_) => {
                return Err(SyncError::StoreCorrupt {
                    path,
                    detail: "the storage engine failed while reading it".into(),
                });
            }
        };
        let client_id = std::panic::catch_unwind(AssertUnwindSafe(|| tables::init(&db)))
            .unwrap_or_else(|_| Err(SyncError::Storage("the storage engine failed".into())))
            .map_err(|e| match e {
                SyncError::Storage(detail) => SyncError::StoreCorrupt {
                    path: path.clone(),
                    detail,
                },
                other => other,
            })?;
        let db = Arc::new(db);
        let committer = Committer::spawn(db.clone(), mode)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                db,
                committer,
                client_id,
            }),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// This store's client id (a UUID made when the store was created), sent with every
    /// operation.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The operations waiting for upload, in queue order, as on disk.
    pub fn pending(&self) -> Result<Vec<Operation>> {
        let read = self.inner.db.begin_read().map_err(SyncError::storage)?;
        let table = read.open_table(QUEUE).map_err(SyncError::storage)?;
        let mut ops = Vec::new();
        for entry in table.iter().map_err(SyncError::storage)? {
            let (_, value) = entry.map_err(SyncError::storage)?;
            ops.push(Operation::from_bytes(value.value())?);
        }
        Ok(ops)
    }

    /// The quarantined operations, as on disk.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedOperation>> {
        self.read_all(QUARANTINE)
    }

    /// The conflict log, oldest first, as on disk.
    pub fn conflicts(&self) -> Result<Vec<ConflictRecord>> {
        self.read_all(CONFLICTS)
    }

    fn read_all<T: serde::de::DeserializeOwned>(
        &self,
        def: redb::TableDefinition<'static, u64, &'static [u8]>,
    ) -> Result<Vec<T>> {
        let read = self.inner.db.begin_read().map_err(SyncError::storage)?;
        let table = read.open_table(def).map_err(SyncError::storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(SyncError::storage)? {
            let (_, value) = entry.map_err(SyncError::storage)?;
            out.push(crate::operation::decode_bytes(value.value())?);
        }
        Ok(out)
    }

    /// Queues `mutations` for the next durable (fsync'd) transaction, shared with concurrent
    /// callers.
    pub(crate) fn submit(&self, mutations: Vec<Mutation>) -> Result<Durable> {
        self.inner.committer.submit(mutations, Vec::new())
    }

    /// [`submit`](Self::submit) for operations computed on top of the queued operations
    /// `based_on` (submitted before, not durable yet): when one of those fails to commit, so
    /// does this, with [`SyncError::BasedOnFailedWrite`], and nothing of it is stored.
    pub(crate) fn submit_based_on(
        &self,
        mutations: Vec<Mutation>,
        based_on: Vec<u64>,
    ) -> Result<Durable> {
        self.inner.committer.submit(mutations, based_on)
    }

    /// Makes the next `n` commits fail as a full disk would (nothing of them is stored), to
    /// test how an app handles it. Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_commits(&self, n: u32) {
        self.inner
            .committer
            .faults
            .fail_next
            .store(n, std::sync::atomic::Ordering::Release);
    }

    /// Makes the commit thread take its next batch of writes and hold it, uncommitted, until
    /// [`release_held_commit`](Self::release_held_commit), so a test can queue writes behind a
    /// commit still in progress. Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn hold_next_commit(&self) {
        let faults = &self.inner.committer.faults;
        faults
            .hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = true;
    }

    /// Whether the commit thread holds a batch (after [`hold_next_commit`](Self::hold_next_commit)).
    #[cfg(feature = "fault-injection")]
    pub fn commit_is_held(&self) -> bool {
        let faults = &self.inner.committer.faults;
        faults
            .hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
    }

    /// Lets the held batch commit (or fail, after [`fail_next_commits`](Self::fail_next_commits)).
    #[cfg(feature = "fault-injection")]
    pub fn release_held_commit(&self) {
        let faults = &self.inner.committer.faults;
        faults
            .hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = false;
        faults.held_changed.notify_all();
    }

    /// The stored download checkpoint of a namespace (BSON), as on disk.
    pub(crate) fn checkpoint(&self, ns: &str) -> Result<Option<Vec<u8>>> {
        let read = self.inner.db.begin_read().map_err(SyncError::storage)?;
        let table = read.open_table(CHECKPOINTS).map_err(SyncError::storage)?;
        Ok(table
            .get(ns)
            .map_err(SyncError::storage)?
            .map(|v| v.value().to_vec()))
    }

    /// A value of the meta table, as on disk.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let read = self.inner.db.begin_read().map_err(SyncError::storage)?;
        let table = read.open_table(META).map_err(SyncError::storage)?;
        Ok(table
            .get(key)
            .map_err(SyncError::storage)?
            .map(|v| v.value().to_vec()))
    }

    pub(crate) fn load(&self) -> Result<Loaded> {
        tables::load(&self.inner.db)
    }
}

fn open_error(path: &Path, error: DatabaseError) -> SyncError {
    let path = path.to_path_buf();
    match error {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            SyncError::StoreLocked { path }
        }
        DatabaseError::UpgradeRequired(version) => SyncError::StoreCorrupt {
            path,
            detail: format!("it uses an older file format (version {version})"),
        },
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            SyncError::StoreCorrupt { path, detail }
        }
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            SyncError::StoreCorrupt {
                path,
                detail: io.to_string(),
            }
        }
        other => SyncError::Storage(format!("{}: {other}", path.display())),
    }
}
