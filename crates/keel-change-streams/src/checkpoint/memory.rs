//! `MemoryCheckpointStore`: checkpoints in process memory, for tests and throwaway consumers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use futures_util::future::{BoxFuture, FutureExt};
use keel_core::Error;
use mongodb::bson::{Document, Timestamp};

use super::{Checkpoint, CheckpointStore, CommitError};

/// Checkpoints in memory; clones share them (so a "restarted" consumer in a test sees them).
#[derive(Clone, Debug, Default)]
pub struct MemoryCheckpointStore {
    entries: Arc<Mutex<HashMap<String, Checkpoint>>>,
}

impl MemoryCheckpointStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl CheckpointStore for MemoryCheckpointStore {
    fn load<'a>(&'a self, consumer: &'a str) -> BoxFuture<'a, Result<Option<Checkpoint>, Error>> {
        let found = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(consumer)
            .cloned();
        async move { Ok(found) }.boxed()
    }

    fn commit<'a>(
        &'a self,
        consumer: &'a str,
        expected: u64,
        token: &'a Document,
        cluster_time: Option<Timestamp>,
        _fence: Option<u64>,
    ) -> BoxFuture<'a, Result<Checkpoint, CommitError>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let found = entries.get(consumer).map(|c| c.version);
        let result = if found.unwrap_or(0) == expected {
            let checkpoint = Checkpoint {
                token: token.clone(),
                version: expected + 1,
                cluster_time,
                committed_at: SystemTime::now(),
            };
            entries.insert(consumer.to_owned(), checkpoint.clone());
            Ok(checkpoint)
        } else {
            Err(CommitError::Conflict {
                consumer: consumer.to_owned(),
                expected,
                found,
            })
        };
        async move { result }.boxed()
    }

    fn clear<'a>(&'a self, consumer: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(consumer);
        async { Ok(()) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn meets_the_store_contract() {
        super::super::contract::check(&MemoryCheckpointStore::new()).await;
    }
}
