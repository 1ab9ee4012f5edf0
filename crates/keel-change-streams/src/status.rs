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
    /// Copying the collection's documents (initial snapshot or resnapshot).
    Snapshotting,
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
    /// Whether the handler side is getting events through (for the stall check).
    pub(crate) progress: crate::health::Progress,
    /// The cluster time the stored checkpoint points at, packed (0: unknown).
    pub(crate) checkpoint_ts: AtomicU64,
    pub(crate) handled: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
    pub(crate) resumes: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
    /// Unix milliseconds of the last stored checkpoint (0: none yet).
    pub(crate) last_commit_ms: AtomicU64,
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

impl ConsumerStats {
    /// How long ago the last checkpoint was stored by this consumer, if it stored one.
    pub fn since_last_commit(&self) -> Option<std::time::Duration> {
        let ms = self.last_commit_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.saturating_sub(std::time::Duration::from_millis(ms))
        })
    }

    /// The cluster time the stored checkpoint points at, when known.
    pub(crate) fn checkpoint_time(&self) -> Option<mongodb::bson::Timestamp> {
        let packed = self.checkpoint_ts.load(Ordering::Relaxed);
        (packed > 0).then_some(mongodb::bson::Timestamp {
            time: (packed >> 32) as u32,
            increment: (packed & 0xFFFF_FFFF) as u32,
        })
    }

    /// Records where the stored checkpoint points (`None`: unknown).
    pub(crate) fn checkpoint_stored(&self, at: Option<mongodb::bson::Timestamp>) {
        let packed = at.map_or(0, |t| (u64::from(t.time) << 32) | u64::from(t.increment));
        self.checkpoint_ts.store(packed, Ordering::Relaxed);
    }

    pub(crate) fn committed_now(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last_commit_ms.store(now, Ordering::Relaxed);
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
