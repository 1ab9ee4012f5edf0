//! `ChangeConsumer`: the builder, the handler loop with at-least-once checkpoints, and the
//! history-lost / invalidate / handler-failure policies. One purpose per module:
//! [`builder`] (settings and `spawn`), [`running`] (the caller's handle), [`run`] (start point,
//! the read/drain loop, end policies), [`lease`], [`snapshotting`], [`drain`] (feed to
//! handler), [`delivery`] (handler retries and the failure policy) and [`commit`] (commit
//! decisions and the store call).

mod builder;
mod commit;
mod delivery;
mod drain;
mod lease;
mod run;
mod running;
mod snapshotting;

pub use builder::{ChangeConsumer, ChangeConsumerBuilder};
pub use running::RunningConsumer;

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::future::BoxFuture;
use keel_core::Error;
use mongodb::bson::Timestamp;
use mongokeel::Keel;
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use crate::{
    ChangeEvent, CheckpointStore, CommitPolicy, ConsumerStats, ConsumerStatus, FailurePolicy,
    HistoryLostPolicy, InvalidatePolicy, LeaseConfig, Notice, StartFrom, checkpoint::Checkpoint,
    metrics, reader::StreamSpec, token::Token,
};

type EachFn<T> =
    Arc<dyn Fn(ChangeEvent<T>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;
type BatchFn<T> =
    Arc<dyn Fn(Vec<ChangeEvent<T>>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;
type NoticeFn = Arc<dyn Fn(Notice) + Send + Sync>;

enum Handler<T> {
    Each(EachFn<T>),
    Batch(BatchFn<T>),
}

struct Engine<T> {
    keel: Keel,
    name: Arc<str>,
    spec: Arc<StreamSpec>,
    store: Arc<dyn CheckpointStore>,
    start_from: StartFrom,
    commit: CommitPolicy,
    handler: Handler<T>,
    retry: keel_retry::Backoff,
    max_attempts: u32,
    on_failure: FailurePolicy<T>,
    history_lost: HistoryLostPolicy,
    invalidate: InvalidatePolicy,
    heartbeat: Duration,
    buffer: usize,
    on_notice: Option<NoticeFn>,
    lease: Option<LeaseConfig>,
    partitions: usize,
    snapshot_page: u32,
    fence: Option<u64>,
    lease_lost: Option<watch::Receiver<bool>>,
    renewer: Option<AbortOnDrop>,
    stats: Arc<ConsumerStats>,
    /// The per-event metrics, registered once.
    meters: metrics::Meters,
    status: watch::Sender<ConsumerStatus>,
    stop: watch::Receiver<bool>,
    /// A shutdown cut a handler retry short.
    interrupted: std::sync::atomic::AtomicBool,
    /// The error the consumer stopped with, set before the `Stopped` status is published.
    stop_error: Arc<OnceLock<Arc<Error>>>,
}

/// Where the handler side stands: the stored checkpoint and what was handled since.
struct Position {
    stored: Option<Checkpoint>,
    /// Token after the last handled event (or quiet batch) not yet committed.
    pending: Option<(Token, Option<Timestamp>)>,
    since_commit: u32,
    last_commit: Instant,
    last_cluster_time: Option<Timestamp>,
}

/// A background task that ends with its owner, also when the owner's task is aborted (a killed
/// consumer must not keep renewing its lease or reading its stream).
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Ended {
    Shutdown,
    LeaseLost,
    Invalidated(Token),
    Failed(Error),
}

fn now_timestamp() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Timestamp {
        time: u32::try_from(secs).unwrap_or(u32::MAX),
        increment: 0,
    }
}

fn age_of(checkpoint: Option<&Checkpoint>) -> String {
    match checkpoint.map(|c| c.committed_at.elapsed().unwrap_or_default()) {
        Some(age) => format!("{} s old", age.as_secs()),
        None => "never committed".to_owned(),
    }
}
