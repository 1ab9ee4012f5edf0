//! The session of the upload transaction in flight, recorded in the store so that a client
//! killed inside a transaction does not wait for the server to abort it.
//!
//! A transaction left open by a dead process keeps its writes, so the next transaction on the
//! same documents gets `WriteConflict` until the server aborts it
//! (`transactionLifetimeLimitSeconds`, 60 s on mongod). Its `lsid` is durable before the
//! transaction starts, and the transaction counts as ended once it committed. One that may
//! still be open before the next transaction (the `lsid` found at start, after an abort, which
//! drivers send without reporting whether it arrived, or after a run that failed on the
//! network) is ended with `{ killSessions: [ { id: <UUID> } ] }` on `admin`, which
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

/// The recorded `lsid`, and whether its transaction may still be open.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    store: Store,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// What the store holds.
    stored: Option<Document>,
    /// Whether its transaction may be open: from its recording to its commit, and for a
    /// session found in the store at start (a previous process did not see it end).
    open: bool,
}

impl Recorded {
    /// The `lsid` the store holds, taken as open: a previous process may have died in it.
    pub(crate) fn load(store: &Store) -> Result<Self> {
        let stored = match store.meta(META_TXN_SESSION)? {
            Some(bytes) => Some(Document::from_reader(bytes.as_slice()).map_err(|e| {
                SyncError::Storage(format!("the recorded upload session is not BSON ({e})"))
            })?),
            None => None,
        };
        let open = stored.is_some();
        Ok(Self {
            store: store.clone(),
            state: Arc::new(Mutex::new(State { stored, open })),
        })
    }

    /// The session to kill, if its transaction may be open.
    fn open(&self) -> Option<Document> {
        let state = lock(&self.state);
        state.stored.clone().filter(|_| state.open)
    }

    /// Records `lsid` durably before the transaction's first statement is sent. Nothing to
    /// write when the store holds it already: the driver hands out its pooled sessions most
    /// recently used first, so one upload after another mostly runs in the same session and
    /// costs no fsync of its own.
    pub(crate) async fn record(&self, lsid: &Document) -> Result<()> {
        {
            let mut state = lock(&self.state);
            if state.stored.as_ref() == Some(lsid) {
                state.open = true;
                return Ok(());
            }
        }
        let bytes = mongodb::bson::to_vec(lsid).map_err(SyncError::bson)?;
        self.store
            .submit(vec![Mutation::PutMeta(META_TXN_SESSION, bytes)])?
            .wait()
            .await?;
        // Only once durable: `stored` stands for what the store holds. One transaction runs
        // at a time, so nothing records meanwhile.
        *lock(&self.state) = State {
            stored: Some(lsid.clone()),
            open: true,
        };
        Ok(())
    }

    /// The transaction committed: nothing to kill. The `lsid` stays in the store (the next
    /// transaction likely runs in the same session); a restart kills it once, which ends
    /// nothing but the dead process's session.
    pub(crate) fn ended(&self) {
        lock(&self.state).open = false;
    }

    /// Kills the recorded session, if any, so its transaction (left open by a killed process,
    /// an abort that did not arrive, or a run Keel gave up on after a network error) releases
    /// its documents now. A server that refuses the command (no such command, code 59; not
    /// authorized) leaves the transaction to its lifetime limit: it counts as ended all the
    /// same. A network error is returned (Keel runs the transaction again).
    pub(crate) async fn kill(&self, client: &mongodb::Client) -> mongodb::error::Result<()> {
        let Some(lsid) = self.open() else {
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
        self.ended();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recorded_session_is_taken_as_open_after_reopening_until_it_ended() {
        let dir =
            std::env::temp_dir().join(format!("keel-sync-txn-session-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.redb");
        let lsid = doc! { "id": mongodb::bson::Binary::from_uuid(mongodb::bson::Uuid::new()) };
        {
            let store = Store::open(&path).unwrap();
            let recorded = Recorded::load(&store).unwrap();
            assert_eq!(recorded.open(), None);
            recorded.record(&lsid).await.unwrap();
            assert_eq!(recorded.open(), Some(lsid.clone()));
            recorded.ended();
            assert_eq!(recorded.open(), None, "committed: nothing to kill");
            recorded.record(&lsid).await.unwrap();
        }
        let store = Store::open(&path).unwrap();
        let recorded = Recorded::load(&store).unwrap();
        assert_eq!(
            recorded.open(),
            Some(lsid),
            "durable before the transaction: a restart kills it"
        );
        drop(recorded);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
