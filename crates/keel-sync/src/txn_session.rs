//! The session of the upload transaction in flight, recorded in the store so that a client
//! killed inside a transaction does not wait for the server to abort it.
//!
//! A transaction left open by a dead process keeps its writes, so the next transaction on the
//! same documents gets `WriteConflict` until the server aborts it
//! (`transactionLifetimeLimitSeconds`, 60 s on mongod). Its `lsid` is durable before the
//! transaction starts and cleared once it committed. A recorded `lsid` found before the next
//! transaction (after a restart, or after an abort, which drivers send without reporting
//! whether it arrived) is ended with `{ killSessions: [ { id: <UUID> } ] }` on `admin`, which
//! kills the session's operations and aborts its open transaction (MongoDB manual,
//! `reference/command/killSessions`; mongod's
//! jstests/core/txns/kill_sessions_kills_transaction.js). Exactly once does not rest on this:
//! a killed transaction applied nothing, and the `_sync` marks find what a commit applied.

use std::sync::{Arc, Mutex};

use mongodb::{
    bson::{Document, doc},
    error::ErrorKind,
};

use crate::{
    Result, SyncError,
    store::{META_TXN_SESSION, Mutation, Store},
    upload_txn::lock,
};

/// The recorded `lsid` (in memory as in the store).
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    store: Store,
    lsid: Arc<Mutex<Option<Document>>>,
}

impl Recorded {
    /// The `lsid` the store holds: a transaction a previous process did not see end.
    pub(crate) fn load(store: &Store) -> Result<Self> {
        let lsid = match store.meta(META_TXN_SESSION)? {
            Some(bytes) => Some(Document::from_reader(bytes.as_slice()).map_err(|e| {
                SyncError::Storage(format!("the recorded upload session is not BSON ({e})"))
            })?),
            None => None,
        };
        Ok(Self {
            store: store.clone(),
            lsid: Arc::new(Mutex::new(lsid)),
        })
    }

    fn get(&self) -> Option<Document> {
        lock(&self.lsid).clone()
    }

    /// Records `lsid` durably (before the transaction's first statement is sent); nothing to
    /// write when it is the one recorded (a transaction run again in its session).
    pub(crate) async fn record(&self, lsid: &Document) -> Result<()> {
        if lock(&self.lsid).as_ref() == Some(lsid) {
            return Ok(());
        }
        let bytes = mongodb::bson::to_vec(lsid).map_err(SyncError::bson)?;
        self.store
            .submit(vec![Mutation::PutMeta(META_TXN_SESSION, bytes)])?
            .wait()
            .await?;
        // Only once durable: in memory it stands for what the store holds. One transaction
        // runs at a time, so nothing records meanwhile.
        *lock(&self.lsid) = Some(lsid.clone());
        Ok(())
    }

    /// Forgets the recorded `lsid`: its transaction ended. Not awaited: were the removal lost,
    /// the next transaction would only kill a session that has nothing left to abort.
    pub(crate) fn clear(&self) {
        let mut current = lock(&self.lsid);
        if current.take().is_some() {
            // A closed store fails the next submit that needs it; this one may be dropped.
            let _ = self
                .store
                .submit(vec![Mutation::RemoveMeta(META_TXN_SESSION)]);
        }
    }

    /// Kills the recorded session, if any, so its transaction (left open by a killed process,
    /// an abort that did not arrive, or a run Keel gave up on after a network error) releases
    /// its documents now. A server that refuses the command (no such command, code 59; not
    /// authorized) leaves the transaction to its lifetime limit: the record is cleared all the
    /// same. A network error is returned (Keel runs the transaction again).
    pub(crate) async fn kill(&self, client: &mongodb::Client) -> mongodb::error::Result<()> {
        let Some(lsid) = self.get() else {
            return Ok(());
        };
        if let Some(id) = lsid.get("id").cloned() {
            let admin = client.database("admin");
            match admin
                .run_command(doc! { "killSessions": [ { "id": id } ] })
                .await
            {
                Ok(_) => {}
                Err(error) => match *error.kind {
                    ErrorKind::Command(ref refused) => tracing::warn!(
                        code = refused.code,
                        "keel-sync: the server refused to kill the session of an unfinished \
                         upload transaction; the next upload may wait until the server aborts it"
                    ),
                    _ => return Err(error),
                },
            }
        }
        self.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recorded_session_survives_reopening_until_cleared() {
        let dir =
            std::env::temp_dir().join(format!("keel-sync-txn-session-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.redb");
        let lsid = doc! { "id": mongodb::bson::Binary::from_uuid(mongodb::bson::Uuid::new()) };
        {
            let store = Store::open(&path).unwrap();
            let recorded = Recorded::load(&store).unwrap();
            assert_eq!(recorded.get(), None);
            recorded.record(&lsid).await.unwrap();
        }
        let store = Store::open(&path).unwrap();
        let recorded = Recorded::load(&store).unwrap();
        assert_eq!(
            recorded.get(),
            Some(lsid.clone()),
            "durable before the transaction"
        );
        recorded.clear();
        // Commits are applied in order: once a later write is durable, so is the removal.
        store
            .submit(vec![Mutation::PutMeta("test", vec![1])])
            .unwrap()
            .wait()
            .await
            .unwrap();
        drop(recorded);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(Recorded::load(&store).unwrap().get(), None);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
