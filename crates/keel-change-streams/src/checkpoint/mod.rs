//! Checkpoints: where a consumer stands in the stream, and the stores that keep them.
//!
//! A commit is a compare-and-set on the checkpoint's version, so two writers can never both
//! advance it from the same place (and a consumer never reports a checkpoint it did not store).

mod file;
mod memory;
mod mongo;

use std::time::SystemTime;

use futures_util::future::BoxFuture;
use keel_core::Error;
use mongodb::bson::{Document, Timestamp};

pub use file::FileCheckpointStore;
pub use memory::MemoryCheckpointStore;
pub use mongo::{CHECKPOINT_COLLECTION, MongoCheckpointStore};

/// A stored checkpoint: the resume token after the last event handled (or the last quiet
/// batch), with its version.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The resume token to resume after.
    pub token: Document,
    /// Increases by one with every commit; `0` means "never committed".
    pub version: u64,
    /// The cluster time of the last handled event, when known (for the checkpoint's age).
    pub cluster_time: Option<Timestamp>,
    /// When the checkpoint was committed (this process's wall clock).
    pub committed_at: SystemTime,
}

/// The field of a checkpoint token that says "start at this cluster time" (Keel's own shape:
/// a server's resume tokens are `{_data: …}`), written by `keel streams reset --to TIME`.
const START_AT: &str = "keelStartAt";

/// A checkpoint token that makes the consumer start at cluster time `at` (inclusive,
/// `startAtOperationTime`), for an operator's reset to a time.
pub fn start_at_token(at: Timestamp) -> Document {
    let mut token = Document::new();
    token.insert(START_AT, at);
    token
}

/// The cluster time of a token written by [`start_at_token`].
pub(crate) fn start_at_of(token: &Document) -> Option<Timestamp> {
    token.get_timestamp(START_AT).ok()
}

/// Why a commit did not store the checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The stored version is not the one the committer started from: someone else committed.
    #[error(
        "checkpoint of consumer '{consumer}' was changed by someone else (expected version \
         {expected}, found {found:?}); another instance may be running without a lease"
    )]
    Conflict {
        /// The consumer.
        consumer: String,
        /// The version the commit expected.
        expected: u64,
        /// The version found, if any.
        found: Option<u64>,
    },
    /// The committer's lease was taken over: its fencing token is no longer the current one.
    #[error("consumer '{consumer}' lost its lease (fencing token {fence} is stale); it stops")]
    Fenced {
        /// The consumer.
        consumer: String,
        /// The stale fencing token.
        fence: u64,
    },
    /// The store is gone or closed for good (its owner shut down, its file system is
    /// read-only…): retrying cannot help, so the consumer stops with this error, committing
    /// nothing more.
    #[error("checkpoint store of consumer '{consumer}' is unavailable: {reason}")]
    Unavailable {
        /// The consumer.
        consumer: String,
        /// Why, as a sentence.
        reason: String,
    },
    /// The store could not be reached or failed; the commit may be retried.
    #[error("checkpoint store failed for consumer '{consumer}': {source}")]
    Store {
        /// The consumer.
        consumer: String,
        /// What failed.
        #[source]
        source: Error,
    },
}

impl CommitError {
    /// Whether retrying the same commit may succeed (store failures only).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store { .. })
    }
}

/// Loads and commits checkpoints by consumer name.
pub trait CheckpointStore: Send + Sync + 'static {
    /// The consumer's checkpoint, or `None` before its first commit.
    fn load<'a>(&'a self, consumer: &'a str) -> BoxFuture<'a, Result<Option<Checkpoint>, Error>>;

    /// Stores `token` as version `expected + 1` if the stored version is still `expected`
    /// (`0`: none stored yet). With `fence`, the store also checks that this fencing token still
    /// holds the consumer's lease (stores without leases ignore it).
    fn commit<'a>(
        &'a self,
        consumer: &'a str,
        expected: u64,
        token: &'a Document,
        cluster_time: Option<Timestamp>,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<Checkpoint, CommitError>>;

    /// Removes the consumer's checkpoint (an operator's reset: the next start uses the
    /// configured start point).
    fn clear<'a>(&'a self, consumer: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Takes the consumer's lease for `owner` until `duration` from now, when it is free,
    /// expired or already `owner`'s: `Some(fencing token)`, a number larger than every earlier
    /// holder's; `None` while another owner holds it. Stores without leases refuse.
    fn acquire_lease<'a>(
        &'a self,
        consumer: &'a str,
        owner: &'a str,
        duration: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, Error>> {
        let _ = (owner, duration);
        Box::pin(async move {
            Err(Error::config(format!(
                "consumer '{consumer}' asks for a lease, but its checkpoint store has none: use \
                 MongoCheckpointStore"
            )))
        })
    }

    /// Extends the lease held with `fence` by `duration` from now; `false` when it was taken
    /// over.
    fn renew_lease<'a>(
        &'a self,
        consumer: &'a str,
        owner: &'a str,
        fence: u64,
        duration: std::time::Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let _ = (consumer, owner, fence, duration);
        Box::pin(async { Ok(false) })
    }
}

/// Checks a consumer name used as a key (and a file name): non-empty, at most 120 characters
/// of `A–Z a–z 0–9 . _ -`.
pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 120
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "consumer name '{name}' is not valid: use 1 to 120 letters, digits, '.', '_' or '-', \
             not starting with '.'"
        )))
    }
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every store must have, run against each implementation.
    use super::*;
    use mongodb::bson::doc;

    pub(crate) async fn check(store: &dyn CheckpointStore) {
        assert_eq!(store.load("orders").await.unwrap(), None);
        let t1 = doc! {"_data": "01"};
        let first = store.commit("orders", 0, &t1, None, None).await.unwrap();
        assert_eq!(first.version, 1);
        assert_eq!(store.load("orders").await.unwrap().unwrap().token, t1);
        // A second commit from the same version is refused: compare-and-set.
        let t2 = doc! {"_data": "02"};
        let stale = store
            .commit("orders", 0, &t2, None, None)
            .await
            .unwrap_err();
        assert!(matches!(stale, CommitError::Conflict { .. }), "{stale}");
        let ts = Timestamp {
            time: 3,
            increment: 1,
        };
        let second = store
            .commit("orders", 1, &t2, Some(ts), None)
            .await
            .unwrap();
        assert_eq!(second.version, 2);
        let loaded = store.load("orders").await.unwrap().unwrap();
        assert_eq!(
            (loaded.token, loaded.version, loaded.cluster_time),
            (t2, 2, Some(ts))
        );
        // Names are independent.
        assert_eq!(store.load("other").await.unwrap(), None);
        store.clear("orders").await.unwrap();
        assert_eq!(store.load("orders").await.unwrap(), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("orders-v2.indexer").is_ok());
        for bad in ["", "../etc", "a/b", ".hidden", "sp ace"] {
            let err = validate_name(bad).unwrap_err();
            assert!(err.detail().contains("not valid"), "{bad}");
        }
    }
}
