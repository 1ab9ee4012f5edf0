//! `ConsumerStatus` (published on a `watch` channel) and the counters of a running consumer.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a consumer is doing now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerStatus {
    /// Loading the checkpoint and opening the stream.
    Starting,
    /// Consuming.
    Running,
    /// The stream failed with a resumable error and is being re-opened (paced by backoff).
    Resuming {
        /// Consecutive resume attempts so far.
        attempt: u32,
        /// The error class that caused it.
        class: &'static str,
    },
    /// Another instance holds the lease; this one waits to take over.
    WaitingForLease,
    /// Stopped: `None` after a graceful shutdown or an invalidate with the stop policy.
    Stopped {
        /// The error that stopped it, as a sentence.
        error: Option<String>,
    },
}

/// Counters of one consumer since it started.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub(crate) handled: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
}

impl ConsumerStats {
    /// Events whose handler returned `Ok` (or that a policy skipped).
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }
    /// Failed handler attempts.
    pub fn handler_errors(&self) -> u64 {
        self.handler_errors.load(Ordering::Relaxed)
    }
    /// Times the stream was re-opened after a resumable error (the consumer's own resumes,
    /// beyond the driver's single internal one).
    pub fn resumes(&self) -> u64 {
        self.resumes.load(Ordering::Relaxed)
    }
    /// Events written to the dead-letter collection.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }
    /// Checkpoints stored.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
    /// Of those, heartbeat commits of a quiet stream's `postBatchResumeToken`.
    pub fn heartbeats(&self) -> u64 {
        self.heartbeats.load(Ordering::Relaxed)
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
