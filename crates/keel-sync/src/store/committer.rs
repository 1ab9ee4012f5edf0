//! Group commit: one thread turns every write queued meanwhile into one durable redb
//! transaction, so concurrent writers share each fsync.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
};

use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::{CHECKPOINTS, CONFLICTS, DECISIONS, META, QUARANTINE, QUEUE, REPLICA};
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
    /// The conflict decision of an operation's write about to be sent (see `upload.rs`).
    PutDecision(u64, Vec<u8>),
    RemoveDecision(u64),
}

struct Request {
    mutations: Vec<Mutation>,
    /// Queued operations (by sequence number) this request's operations were computed on top
    /// of, submitted earlier and not yet durable then: when one of their commits failed, this
    /// request fails too, unstored.
    based_on: Vec<u64>,
    done: oneshot::Sender<Result<()>>,
}

impl Request {
    fn queued_ops(&self) -> impl Iterator<Item = u64> + '_ {
        self.mutations.iter().filter_map(|m| match m {
            Mutation::PutOp(seq, _) => Some(*seq),
            _ => None,
        })
    }
}

/// Test hooks (only `Store::fail_next_commits` and `Store::hold_next_commit` set them, which
/// exist with the `fault-injection` feature).
#[derive(Default)]
pub(crate) struct Faults {
    /// Commits still to fail on purpose.
    pub(crate) fail_next: AtomicU32,
    /// `(armed, held)`: when armed, the thread takes its next batch, says it holds it, and
    /// waits until disarmed before committing it (so a test can queue a write behind it).
    pub(crate) hold: std::sync::Mutex<(bool, bool)>,
    pub(crate) held_changed: std::sync::Condvar,
}

impl Faults {
    fn wait_while_held(&self) {
        let mut hold = self
            .hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !hold.0 {
            return;
        }
        hold.1 = true;
        self.held_changed.notify_all();
        while hold.0 {
            hold = self
                .held_changed
                .wait(hold)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        hold.1 = false;
    }
}

/// The handle to the commit thread; the thread ends when the last handle is dropped.
pub(crate) struct Committer {
    requests: Option<mpsc::Sender<Request>>,
    /// Fault injection for tests (inert otherwise).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    pub(crate) faults: Arc<Faults>,
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
        let faults = Arc::new(Faults::default());
        let injected = faults.clone();
        let thread = std::thread::Builder::new()
            .name("keel-sync-commit".into())
            .spawn(move || run(&db, &incoming, mode, &injected))
            .map_err(SyncError::storage)?;
        Ok(Self {
            requests: Some(requests),
            faults,
            thread: Some(thread),
        })
    }

    /// Queues `mutations` for the next commit (callers submit under their own lock, so the
    /// commit order is theirs); await the result for durability. `based_on`: the queued
    /// operations (submitted before, not yet durable) these were computed on top of.
    pub(crate) fn submit(&self, mutations: Vec<Mutation>, based_on: Vec<u64>) -> Result<Durable> {
        let (done, committed) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or(SyncError::StoreClosed)?
            .send(Request {
                mutations,
                based_on,
                done,
            })
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
fn run(db: &Database, incoming: &mpsc::Receiver<Request>, mode: CommitMode, faults: &Faults) {
    // Queued operations whose commit failed: a later request built on one of them fails too
    // (it was computed on a state that never became durable). Grows only on failures.
    let mut failed_ops: HashSet<u64> = HashSet::new();
    while let Ok(first) = incoming.recv() {
        let mut batch = vec![first];
        if mode == CommitMode::Group {
            while let Ok(more) = incoming.try_recv() {
                batch.push(more);
            }
        }
        // In queue order: a request built on a failed one fails, and so does one built on it.
        let mut orphaned = Vec::new();
        let mut kept = Vec::with_capacity(batch.len());
        for request in batch {
            if request.based_on.iter().any(|seq| failed_ops.contains(seq)) {
                failed_ops.extend(request.queued_ops());
                orphaned.push(request);
            } else {
                kept.push(request);
            }
        }
        for request in orphaned {
            let _ = request.done.send(Err(SyncError::BasedOnFailedWrite));
        }
        if kept.is_empty() {
            continue;
        }
        faults.wait_while_held();
        let injected = faults
            .fail_next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        let outcome = if injected {
            Err("an injected failure (Store::fail_next_commits)".to_owned())
        } else {
            commit_batch(db, &kept)
        };
        if outcome.is_err() {
            for request in &kept {
                failed_ops.extend(request.queued_ops());
            }
        }
        for request in kept {
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
        let mut decisions = write.open_table(DECISIONS)?;
        for mutation in batch.iter().flat_map(|r| r.mutations.iter()) {
            match mutation {
                Mutation::PutOp(seq, bytes) => {
                    queue.insert(*seq, bytes.as_slice())?;
                }
                Mutation::RemoveOp(seq) => {
                    queue.remove(*seq)?;
                    // Its decision, if one was recorded, goes with it.
                    decisions.remove(*seq)?;
                }
                Mutation::PutDecision(seq, bytes) => {
                    decisions.insert(*seq, bytes.as_slice())?;
                }
                Mutation::RemoveDecision(seq) => {
                    decisions.remove(*seq)?;
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
