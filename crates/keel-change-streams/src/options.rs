//! What a consumer watches and how it behaves: target, start point, commit, failure policies.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use mongodb::bson::{Document, Timestamp};

use crate::ChangeEvent;

/// What the consumer watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchTarget {
    /// One collection.
    Collection {
        /// Its database.
        database: String,
        /// The collection.
        collection: String,
    },
    /// Every collection of a database.
    Database(String),
    /// The whole deployment.
    Deployment,
}

impl WatchTarget {
    /// One collection.
    pub fn collection(database: &str, collection: &str) -> Self {
        Self::Collection {
            database: database.to_owned(),
            collection: collection.to_owned(),
        }
    }
}

/// Where a consumer without a checkpoint starts. A stored checkpoint always wins.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum StartFrom {
    /// Changes from the moment the stream opens (the default).
    #[default]
    Now,
    /// Changes at or after this cluster time (`startAtOperationTime`).
    At(Timestamp),
    /// Changes after this resume token (`startAfter`, which also accepts an `invalidate` token).
    After(Document),
    /// First every document of the watched collection as a `snapshot` event, then the changes
    /// from the moment the copy began (no gap; a document changed during the copy also comes as
    /// a change). The copy's progress is checkpointed: a restart continues after the last copied
    /// `_id`. Needs a collection target.
    Snapshot,
}

/// When the checkpoint is committed (always only up to events whose handler returned `Ok`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CommitPolicy {
    /// After every handled batch: every time the handler caught up with what the server sent
    /// (the default).
    #[default]
    EveryBatch,
    /// After every event.
    EveryEvent,
    /// After every `n` events (and at the end of a quiet period or shutdown).
    EveryN(u32),
    /// At most this often (and at shutdown).
    Every(Duration),
}

/// The user's fallback for an event whose handler kept failing: `Ok` skips the event.
pub type Fallback<T> =
    Arc<dyn Fn(ChangeEvent<T>, String) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What happens to an event whose handler failed every attempt.
#[derive(Clone, Default)]
pub enum FailurePolicy<T> {
    /// Stop the consumer with the handler's error (the default); the event is redelivered at
    /// the next start.
    #[default]
    Stop,
    /// Record `{consumer, event, error, attempts, at}` in this collection and go on.
    DeadLetter {
        /// The database.
        database: String,
        /// The collection.
        collection: String,
    },
    /// Call this fallback; its `Ok` skips the event, its `Err` stops the consumer.
    Fallback(Fallback<T>),
}

impl<T> std::fmt::Debug for FailurePolicy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stop => f.write_str("Stop"),
            Self::DeadLetter {
                database,
                collection,
            } => write!(f, "DeadLetter({database}.{collection})"),
            Self::Fallback(_) => f.write_str("Fallback"),
        }
    }
}

/// What happens when the checkpoint fell off the oplog (`ChangeStreamHistoryLost`, 286).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HistoryLostPolicy {
    /// Stop with an error naming the consumer and the checkpoint's age (the default).
    #[default]
    Fail,
    /// Restart from now after a [`Notice::Gap`]: events in between are lost.
    RestartFromNow,
    /// Copy the collection again as `snapshot` events (after a [`Notice::Resnapshot`]), then
    /// stream from the moment the copy began: the handler sees every document's current state;
    /// only deletions in the lost stretch are not seen. Needs a collection target.
    Resnapshot,
}

/// What happens after an `invalidate` event (drop, rename, dropDatabase of the target).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InvalidatePolicy {
    /// The handler gets the event, then the consumer stops (the default).
    #[default]
    Stop,
    /// The handler gets the event, then the consumer goes on with `startAfter` its token.
    Restart,
}

/// Something the application should know that is not an event.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Notice {
    /// Events between these cluster times were lost (history lost, restarted from now).
    Gap {
        /// The cluster time of the last checkpoint, when known.
        from: Option<Timestamp>,
        /// About when the new stream started (this process's clock).
        to: Timestamp,
    },
    /// The watched namespace was invalidated and the consumer restarted after it.
    Restarted,
    /// History was lost after this cluster time (when known); the collection is copied again
    /// (`HistoryLostPolicy::Resnapshot`).
    Resnapshot {
        /// The cluster time of the last checkpoint, when known.
        from: Option<Timestamp>,
    },
}

/// How a failing handler is retried before the [`FailurePolicy`] applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HandlerRetry {
    /// Attempts per event (or batch), the first included; at least 1.
    /// [`HandlerRetry::FOREVER`] retries until the handler succeeds.
    pub max_attempts: u32,
    /// The delay between attempts.
    pub backoff: keel_retry::BackoffConfig,
}

impl HandlerRetry {
    /// `max_attempts` that means "retry forever": the failure policy never applies, the
    /// consumer retries the event until its handler succeeds or the consumer is shut down
    /// (a shutdown interrupts the wait between attempts; the event is not committed, so it is
    /// delivered again after a restart).
    pub const FOREVER: u32 = u32::MAX;

    /// Retries every failed event forever with `backoff` between attempts (see
    /// [`FOREVER`](Self::FOREVER)).
    pub fn forever(backoff: keel_retry::BackoffConfig) -> Self {
        Self {
            max_attempts: Self::FOREVER,
            backoff,
        }
    }

    /// Whether `attempts` failed attempts used up the retries.
    pub(crate) fn exhausted(max_attempts: u32, attempts: u32) -> bool {
        max_attempts != Self::FOREVER && attempts >= max_attempts
    }
}

impl Default for HandlerRetry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: keel_retry::BackoffConfig::default(),
        }
    }
}

/// Leases: several instances of one consumer, exactly one consuming (see the README).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// This instance's name (e.g. host name and process id); unique per instance.
    pub owner: String,
    /// How long a lease lasts without renewal: a standby takes over at most this long after
    /// the holder died.
    pub duration: Duration,
    /// How often the holder renews, and a standby tries to take over (well below `duration`).
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// A lease of 10 s renewed every 2 s, for `owner`.
    pub fn new(owner: &str) -> Self {
        Self {
            owner: owner.to_owned(),
            duration: Duration::from_secs(10),
            renew_every: Duration::from_secs(2),
        }
    }
}
