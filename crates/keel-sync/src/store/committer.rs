//! Group commit: one thread turns every write queued meanwhile into one durable redb
//! transaction, so concurrent writers share each fsync.

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
    mpsc,
};

use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::{CHECKPOINTS, CONFLICTS, META, QUARANTINE, QUEUE, REPLICA};
use crate::{Result, SyncError};

/// How the store commits writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitMode {
    /// Every write waiting when a commit starts joins it: one fsync for all of them.
    #[default]
    Group,
    /// One transaction (one fsync) per write, for comparison.
    PerOperation,
}

/// One change to the store; a request's mutations are applied in order.
#[derive(Debug)]
pub(crate) enum Mutation {
    PutOp(u64, Vec<u8>),
    RemoveOp(u64),
    PutReplica(Vec<u8>, Vec<u8>),
    RemoveReplica(Vec<u8>),
    PutMeta(&'static str, Vec<u8>),
    PutConflict(u64, Vec<u8>),
    PutQuarantine(u64, Vec<u8>),
    RemoveQuarantine(u64),
    PutCheckpoint(String, Vec<u8>),
    RemoveCheckpoint(String),
}

struct Request {
    mutations: Vec<Mutation>,
    done: oneshot::Sender<Result<()>>,
}

/// The handle to the commit thread; the thread ends when the last handle is dropped.
pub(crate) struct Committer {
    requests: Option<mpsc::Sender<Request>>,
    /// Commits still to fail on purpose (fault injection for tests; 0 otherwise). Only
    /// `Store::fail_next_commits` sets it, which exists with the `fault-injection` feature.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    pub(crate) fail_next: Arc<AtomicU32>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Committer {
    // Joins the thread, so the file is closed (and its lock released) when the store is dropped.
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Committer {
    pub(crate) fn spawn(db: Arc<Database>, mode: CommitMode) -> Result<Self> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let fail_next = Arc::new(AtomicU32::new(0));
        let failing = fail_next.clone();
        let thread = std::thread::Builder::new()
            .name("keel-sync-commit".into())
            .spawn(move || run(&db, &incoming, mode, &failing))
            .map_err(SyncError::storage)?;
        Ok(Self {
            requests: Some(requests),
            fail_next,
            thread: Some(thread),
        })
    }

    /// Queues `mutations` for the next commit (callers submit under their own lock, so the
    /// commit order is theirs); await the result for durability.
    pub(crate) fn submit(&self, mutations: Vec<Mutation>) -> Result<Durable> {
        let (done, committed) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or(SyncError::StoreClosed)?
            .send(Request { mutations, done })
            .map_err(|_| SyncError::StoreClosed)?;
        Ok(Durable(committed))
    }
}

/// Resolves once a submitted write is durable on disk.
#[derive(Debug)]
pub(crate) struct Durable(oneshot::Receiver<Result<()>>);

impl Durable {
    pub(crate) async fn wait(self) -> Result<()> {
        self.0.await.map_err(|_| SyncError::StoreClosed)?
    }
}

// A blocking thread, not a tokio task: redb's commit blocks in fsync, and a runtime worker
// must not.
fn run(db: &Database, incoming: &mpsc::Receiver<Request>, mode: CommitMode, failing: &AtomicU32) {
    while let Ok(first) = incoming.recv() {
        let mut batch = vec![first];
        if mode == CommitMode::Group {
            while let Ok(more) = incoming.try_recv() {
                batch.push(more);
            }
        }
        let injected = failing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        let outcome = if injected {
            Err("an injected failure (Store::fail_next_commits)".to_owned())
        } else {
            commit_batch(db, &batch)
        };
        for request in batch {
            let _ = request.done.send(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(SyncError::Storage(e.clone())),
            });
        }
    }
}

fn commit_batch(db: &Database, batch: &[Request]) -> Result<(), String> {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| apply(db, batch)));
    match caught {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("the storage engine failed during a commit".into()),
    }
}

fn apply(db: &Database, batch: &[Request]) -> Result<(), redb::Error> {
    let mut write = db.begin_write()?;
    // Immediate is redb's default; said here because "acknowledged = fsync'd" rests on it.
    write.set_durability(Durability::Immediate)?;
    {
        let mut queue = write.open_table(QUEUE)?;
        let mut replica = write.open_table(REPLICA)?;
        let mut meta = write.open_table(META)?;
        let mut conflicts = write.open_table(CONFLICTS)?;
        let mut quarantine = write.open_table(QUARANTINE)?;
        let mut checkpoints = write.open_table(CHECKPOINTS)?;
        for mutation in batch.iter().flat_map(|r| r.mutations.iter()) {
            match mutation {
                Mutation::PutOp(seq, bytes) => {
                    queue.insert(*seq, bytes.as_slice())?;
                }
                Mutation::RemoveOp(seq) => {
                    queue.remove(*seq)?;
                }
                Mutation::PutReplica(key, bytes) => {
                    replica.insert(key.as_slice(), bytes.as_slice())?;
                }
                Mutation::RemoveReplica(key) => {
                    replica.remove(key.as_slice())?;
                }
                Mutation::PutMeta(key, bytes) => {
                    meta.insert(*key, bytes.as_slice())?;
                }
                Mutation::PutConflict(id, bytes) => {
                    conflicts.insert(*id, bytes.as_slice())?;
                }
                Mutation::PutQuarantine(seq, bytes) => {
                    quarantine.insert(*seq, bytes.as_slice())?;
                }
                Mutation::RemoveQuarantine(seq) => {
                    quarantine.remove(*seq)?;
                }
                Mutation::PutCheckpoint(ns, bytes) => {
                    checkpoints.insert(ns.as_str(), bytes.as_slice())?;
                }
                Mutation::RemoveCheckpoint(ns) => {
                    checkpoints.remove(ns.as_str())?;
                }
            }
        }
    }
    write.commit()?;
    Ok(())
}
