//! The download checkpoint of a subscribed collection, kept in the sync store (a
//! keel-change-streams `CheckpointStore`): committed with the same durable group commit as the
//! replica, and tied to the subscription filter it was taken for (another filter starts over).

use std::{
    sync::Weak,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::future::{BoxFuture, FutureExt};
use keel_change_streams::{Checkpoint, CheckpointStore, CommitError};
use mongodb::bson::{Bson, Document, Timestamp, doc};

use crate::{client::Inner, store::Mutation};

/// A checkpoint as stored: the consumer's, and the filter it belongs to.
struct Stored {
    checkpoint: Checkpoint,
    filter: Document,
}

pub(crate) struct SyncCheckpointStore {
    inner: Weak<Inner>,
    ns: String,
    filter: Document,
    /// One commit at a time: the compare-and-set reads, then writes.
    commit_lock: tokio::sync::Mutex<()>,
}

impl SyncCheckpointStore {
    pub(crate) fn new(inner: Weak<Inner>, ns: &str, filter: Document) -> Self {
        Self {
            inner,
            ns: ns.to_owned(),
            filter,
            commit_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The stored checkpoint when it was taken for this filter.
    pub(crate) fn stored(&self) -> Result<Option<Checkpoint>, keel_core::Error> {
        Ok(self
            .read()?
            .filter(|s| s.filter == self.filter)
            .map(|s| s.checkpoint))
    }

    fn read(&self) -> Result<Option<Stored>, keel_core::Error> {
        let inner = self.inner.upgrade().ok_or_else(gone)?;
        let Some(bytes) = inner.store.checkpoint(&self.ns).map_err(store_error)? else {
            return Ok(None);
        };
        let doc: Document = mongodb::bson::from_slice(&bytes).map_err(store_error)?;
        let token = doc.get_document("token").map_err(store_error)?.clone();
        let version = u64::try_from(doc.get_i64("version").map_err(store_error)?).unwrap_or(0);
        let committed_ms = u64::try_from(doc.get_i64("committed_at_ms").unwrap_or(0)).unwrap_or(0);
        Ok(Some(Stored {
            checkpoint: Checkpoint {
                token,
                version,
                cluster_time: doc.get_timestamp("cluster_time").ok(),
                committed_at: UNIX_EPOCH + Duration::from_millis(committed_ms),
            },
            filter: doc.get_document("filter").cloned().unwrap_or_default(),
        }))
    }
}

fn gone() -> keel_core::Error {
    keel_core::Error::config("the sync client that owns this checkpoint is gone")
}

fn store_error(error: impl std::fmt::Display) -> keel_core::Error {
    keel_core::Error::config(format!("the sync store's download checkpoint: {error}"))
}

impl CheckpointStore for SyncCheckpointStore {
    fn load<'a>(
        &'a self,
        _consumer: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, keel_core::Error>> {
        let loaded = self.stored();
        async move { loaded }.boxed()
    }

    fn commit<'a>(
        &'a self,
        consumer: &'a str,
        expected: u64,
        token: &'a Document,
        cluster_time: Option<Timestamp>,
        _fence: Option<u64>,
    ) -> BoxFuture<'a, Result<Checkpoint, CommitError>> {
        async move {
            let _one = self.commit_lock.lock().await;
            // The client is gone: nothing may be committed for it any more, and retrying
            // cannot help (`Unavailable` stops the consumer without a retry).
            let Some(inner) = self.inner.upgrade() else {
                return Err(CommitError::Unavailable {
                    consumer: consumer.to_owned(),
                    reason: "the sync client that owns this checkpoint was dropped".into(),
                });
            };
            let store_failed = |source| CommitError::Store {
                consumer: consumer.to_owned(),
                source,
            };
            // A checkpoint of another filter counts as none: the consumer started over.
            let found = self.stored().map_err(store_failed)?.map(|c| c.version);
            if found.unwrap_or(0) != expected {
                return Err(CommitError::Conflict {
                    consumer: consumer.to_owned(),
                    expected,
                    found,
                });
            }
            let committed_at = SystemTime::now();
            let committed_ms = committed_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let version = expected + 1;
            let mut record = doc! {
                "token": token.clone(),
                "version": i64::try_from(version).unwrap_or(i64::MAX),
                "committed_at_ms": committed_ms,
                "filter": self.filter.clone(),
            };
            if let Some(at) = cluster_time {
                record.insert("cluster_time", Bson::Timestamp(at));
            }
            let bytes = mongodb::bson::to_vec(&record).map_err(|e| store_failed(store_error(e)))?;
            // A closed store stays closed: stop rather than retry.
            let failed = |e: crate::SyncError| match e {
                crate::SyncError::StoreClosed => CommitError::Unavailable {
                    consumer: consumer.to_owned(),
                    reason: e.to_string(),
                },
                other => store_failed(store_error(other)),
            };
            let durable = inner
                .store
                .submit(vec![Mutation::PutCheckpoint(self.ns.clone(), bytes)])
                .map_err(failed)?;
            durable.wait().await.map_err(failed)?;
            inner.note_download(&self.ns, |info| info.checkpointed_at = Some(committed_at));
            Ok(Checkpoint {
                token: token.clone(),
                version,
                cluster_time,
                committed_at,
            })
        }
        .boxed()
    }

    fn clear<'a>(&'a self, _consumer: &'a str) -> BoxFuture<'a, Result<(), keel_core::Error>> {
        async move {
            let inner = self.inner.upgrade().ok_or_else(gone)?;
            let durable = inner
                .store
                .submit(vec![Mutation::RemoveCheckpoint(self.ns.clone())])
                .map_err(store_error)?;
            drop(inner);
            durable.wait().await.map_err(store_error)
        }
        .boxed()
    }
}
