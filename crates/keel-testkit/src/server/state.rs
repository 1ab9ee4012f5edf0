//! State shared by every listener and connection of one server: storage, cursors, fail points
//! and counters. One `Arc<Shared>` can back several listeners (replica-set members later).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bson::Document;
use tokio::sync::watch;

use super::fail_points::FailPoints;
use super::replica_set::ReplicaSet;
use crate::storage::{ClusterClock, Storage};

/// Locks a mutex, ignoring poisoning: every critical section leaves the data consistent
/// before anything that could panic, and a test server must keep answering.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An open cursor: the rest of a result set, materialised when the query ran.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) ns: String,
    pub(crate) remaining: VecDeque<Document>,
    /// Set for a change stream cursor (tailable: `remaining` stays empty).
    pub(crate) change_stream: Option<Box<crate::commands::change_stream::ChangeStream>>,
}

/// What `pause` froze: the whole server, or single members (replica sets).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Frozen {
    /// The whole server (`TestServer::pause`).
    pub(crate) all: bool,
    /// Members frozen one by one (`TestServer::pause_member`), by index.
    pub(crate) members: Vec<usize>,
}

impl Frozen {
    /// Whether `member`'s replies are held.
    pub(crate) fn holds(&self, member: usize) -> bool {
        self.all || self.members.contains(&member)
    }
}

/// `serverStatus` counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) current_connections: AtomicI64,
    pub(crate) total_connections: AtomicI64,
    pub(crate) insert: AtomicI64,
    pub(crate) query: AtomicI64,
    pub(crate) update: AtomicI64,
    pub(crate) delete: AtomicI64,
    pub(crate) getmore: AtomicI64,
    pub(crate) command: AtomicI64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicI64, n: i64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn get(counter: &AtomicI64) -> i64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Per-connection facts commands may need.
#[derive(Debug, Default)]
pub(crate) struct ConnInfo {
    pub(crate) id: i64,
    pub(crate) app_name: Option<String>,
    /// The replica-set member this connection reached (0 for a standalone).
    pub(crate) member: usize,
    /// SCRAM state (used only when the server requires authentication).
    pub(crate) auth: crate::auth::ConnAuth,
}

/// Everything one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) storage: Mutex<Storage>,
    pub(crate) cursors: Mutex<HashMap<i64, Cursor>>,
    pub(crate) fail_points: Mutex<FailPoints>,
    pub(crate) counters: Counters,
    pub(crate) started: Instant,
    /// Which members are frozen: their connections read requests but hold their replies.
    pub(crate) paused: watch::Sender<Frozen>,
    /// Present when the server runs as a replica set.
    pub(crate) replica_set: Option<ReplicaSet>,
    /// Present when some member lags (opt-in replication lag).
    pub(crate) replication: Option<super::replication::Replication>,
    /// Present when the server requires authentication.
    pub(crate) users: Option<crate::auth::Users>,
    /// Replies of retryable writes, by session (replica sets).
    pub(crate) retryable: Mutex<super::retryable::RetryableWrites>,
    /// Each session's latest multi-document transaction (replica sets).
    pub(crate) transactions: Mutex<super::transactions::Transactions>,
    /// Present when connections must use TLS.
    pub(crate) tls: Option<crate::tls::Acceptor>,
    /// The cluster time (advanced by writes; reported only by replica sets).
    pub(crate) clock: Arc<ClusterClock>,
    next_connection_id: AtomicI64,
    next_cursor_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        storage: Storage,
        replica_set: Option<ReplicaSet>,
        users: Option<crate::auth::Users>,
        tls: Option<crate::tls::Acceptor>,
        clock: Arc<ClusterClock>,
    ) -> Self {
        Self {
            replica_set,
            replication: None,
            users,
            tls,
            retryable: Mutex::default(),
            transactions: Mutex::default(),
            clock,
            storage: Mutex::new(storage),
            cursors: Mutex::new(HashMap::new()),
            fail_points: Mutex::new(FailPoints::default()),
            counters: Counters::default(),
            started: Instant::now(),
            paused: watch::Sender::new(Frozen::default()),
            next_connection_id: AtomicI64::new(1),
            next_cursor_id: AtomicU64::new(rand::random::<u32>().into()),
        }
    }

    pub(crate) fn next_connection_id(&self) -> i64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh positive, non-zero cursor id (0 means "exhausted" on the wire).
    pub(crate) fn next_cursor_id(&self) -> i64 {
        let n = self.next_cursor_id.fetch_add(1, Ordering::Relaxed);
        i64::try_from(n % (i64::MAX as u64 - 1)).unwrap_or(0) + 1
    }
}
