//! `ChangeConsumer`: the builder, the handler loop with at-least-once checkpoints, and the
//! history-lost / invalidate / handler-failure policies.

use std::{
    marker::PhantomData,
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::future::{BoxFuture, FutureExt};
use keel_core::{Error, Operation};
use mongodb::{
    bson::{DateTime, Document, Timestamp, doc},
    options::{FullDocumentBeforeChangeType, FullDocumentType},
};
use mongokeel::Keel;
use serde::de::DeserializeOwned;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    ChangeEvent, CheckpointStore, CommitError, CommitPolicy, ConsumerStats, ConsumerStatus,
    FailurePolicy, HandlerRetry, HistoryLostPolicy, InvalidatePolicy, LeaseConfig,
    MemoryCheckpointStore, Notice, StartFrom, WatchTarget,
    checkpoint::{Checkpoint, start_at_of, validate_name},
    event::RawEvent,
    metrics, partition,
    reader::{Feed, Reader, StreamSpec},
    resume::StartPoint,
    snapshot::{self, SnapshotState},
    status::bump,
    token::Token,
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

/// A change-stream consumer with a durable checkpoint; see the crate documentation.
pub struct ChangeConsumer<T = Document> {
    _type: PhantomData<fn() -> T>,
}

impl<T> ChangeConsumer<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Starts building the consumer `name` (its checkpoint's key) on `keel`.
    pub fn builder(keel: Keel, name: &str) -> ChangeConsumerBuilder<T> {
        ChangeConsumerBuilder {
            keel,
            name: name.to_owned(),
            target: None,
            pipeline: Vec::new(),
            full_document: None,
            full_document_before_change: None,
            batch_size: None,
            max_await_time: None,
            store: None,
            start_from: StartFrom::Now,
            commit: CommitPolicy::EveryBatch,
            handler: None,
            retry: HandlerRetry::default(),
            on_failure: FailurePolicy::Stop,
            history_lost: HistoryLostPolicy::Fail,
            invalidate: InvalidatePolicy::Stop,
            heartbeat: Duration::from_secs(60),
            resume_backoff: keel_retry::BackoffConfig {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(10),
                ..keel_retry::BackoffConfig::default()
            },
            resume_budget: crate::pacing::DEFAULT_BUDGET,
            buffer: 1024,
            on_notice: None,
            lease: None,
            partitions: 1,
            snapshot_page: 1000,
            health_limits: crate::HealthLimits::default(),
            split_large_events: false,
        }
    }
}

/// Builds a [`ChangeConsumer`]; [`spawn`](Self::spawn) starts it.
#[must_use = "a consumer does nothing until spawned"]
pub struct ChangeConsumerBuilder<T> {
    keel: Keel,
    name: String,
    target: Option<WatchTarget>,
    pipeline: Vec<Document>,
    full_document: Option<FullDocumentType>,
    full_document_before_change: Option<FullDocumentBeforeChangeType>,
    batch_size: Option<u32>,
    max_await_time: Option<Duration>,
    store: Option<Arc<dyn CheckpointStore>>,
    start_from: StartFrom,
    commit: CommitPolicy,
    handler: Option<Handler<T>>,
    retry: HandlerRetry,
    on_failure: FailurePolicy<T>,
    history_lost: HistoryLostPolicy,
    invalidate: InvalidatePolicy,
    heartbeat: Duration,
    resume_backoff: keel_retry::BackoffConfig,
    resume_budget: keel_retry::BudgetConfig,
    buffer: usize,
    on_notice: Option<NoticeFn>,
    lease: Option<LeaseConfig>,
    partitions: usize,
    snapshot_page: u32,
    health_limits: crate::HealthLimits,
    split_large_events: bool,
}

impl<T> ChangeConsumerBuilder<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Watches one collection.
    pub fn collection(mut self, database: &str, collection: &str) -> Self {
        self.target = Some(WatchTarget::collection(database, collection));
        self
    }
    /// Watches every collection of a database.
    pub fn database(mut self, database: &str) -> Self {
        self.target = Some(WatchTarget::Database(database.to_owned()));
        self
    }
    /// Watches the whole deployment.
    pub fn deployment(mut self) -> Self {
        self.target = Some(WatchTarget::Deployment);
        self
    }
    /// Stages after `$changeStream` (`$match`, `$project`…; keep `_id`).
    pub fn pipeline(mut self, stages: impl IntoIterator<Item = Document>) -> Self {
        self.pipeline = stages.into_iter().collect();
        self
    }
    /// Opts in to events over 16 MB (mongod 7.0, 6.0.9): appends
    /// `{$changeStreamSplitLargeEvent: {}}` as the pipeline's last stage, and reassembles the
    /// fragments the server sends into one event before the handler sees it; the checkpoint
    /// only ever advances past the last fragment. Without it such an event stops the consumer
    /// with the server's `BSONObjectTooLarge` (10334).
    pub fn split_large_events(mut self) -> Self {
        self.split_large_events = true;
        self
    }
    /// The `fullDocument` option.
    pub fn full_document(mut self, value: FullDocumentType) -> Self {
        self.full_document = Some(value);
        self
    }
    /// The `fullDocumentBeforeChange` option.
    pub fn full_document_before_change(mut self, value: FullDocumentBeforeChangeType) -> Self {
        self.full_document_before_change = Some(value);
        self
    }
    /// Events per batch the server returns.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n);
        self
    }
    /// How long a `getMore` waits for events on the server.
    pub fn max_await_time(mut self, wait: Duration) -> Self {
        self.max_await_time = Some(wait);
        self
    }
    /// Where checkpoints are kept (default: memory, which survives nothing).
    pub fn store(mut self, store: impl CheckpointStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }
    /// Where to start without a checkpoint (default: now).
    pub fn start_from(mut self, start: StartFrom) -> Self {
        self.start_from = start;
        self
    }
    /// When to commit (default: after every batch).
    pub fn commit_policy(mut self, policy: CommitPolicy) -> Self {
        self.commit = policy;
        self
    }
    /// The handler, called once per event in server order.
    pub fn handler<F, Fut, E>(mut self, handler: F) -> Self
    where
        F: Fn(ChangeEvent<T>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.handler = Some(Handler::Each(Arc::new(move |event| {
            handler(event).map(|r| r.map_err(|e| e.to_string())).boxed()
        })));
        self
    }
    /// A batch handler, called with every event available at once (in order).
    pub fn batch_handler<F, Fut, E>(mut self, handler: F) -> Self
    where
        F: Fn(Vec<ChangeEvent<T>>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.handler = Some(Handler::Batch(Arc::new(move |events| {
            handler(events)
                .map(|r| r.map_err(|e| e.to_string()))
                .boxed()
        })));
        self
    }
    /// Handler retries (default: 3 attempts, keel-retry's default backoff).
    pub fn handler_retry(mut self, retry: HandlerRetry) -> Self {
        self.retry = retry;
        self
    }
    /// What happens after the last failed attempt (default: stop).
    pub fn on_handler_failure(mut self, policy: FailurePolicy<T>) -> Self {
        self.on_failure = policy;
        self
    }
    /// What happens when the checkpoint fell off the oplog (default: fail).
    pub fn on_history_lost(mut self, policy: HistoryLostPolicy) -> Self {
        self.history_lost = policy;
        self
    }
    /// What happens after an `invalidate` (default: stop).
    pub fn on_invalidate(mut self, policy: InvalidatePolicy) -> Self {
        self.invalidate = policy;
        self
    }
    /// Commit a quiet stream's `postBatchResumeToken` at least this often (default 60 s), so
    /// the checkpoint stays inside the oplog while the pipeline filters everything out.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }
    /// Backoff between the consumer's own resumes (default 100 ms to 10 s, full jitter).
    pub fn resume_backoff(mut self, backoff: keel_retry::BackoffConfig) -> Self {
        self.resume_backoff = backoff;
        self
    }
    /// keel-retry's budget for the consumer's own resumes (default: ratio 0.2, 1 per second,
    /// 10 s window): over any window, resumes ≤ `ratio × successful reads + min_per_sec ×
    /// window`, so a stream that opens and fails at once, over and over, cannot become a
    /// resume storm (the backoff starts again at its base after every success). A resume the
    /// budget does not allow waits (status `Resuming`) until it does.
    pub fn resume_budget(mut self, budget: keel_retry::BudgetConfig) -> Self {
        self.resume_budget = budget;
        self
    }
    /// Events read ahead of the handler (default 1024): a slow handler slows the `getMore`s.
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events;
        self
    }
    /// Runs as one of several instances: only the lease holder consumes, the others wait and
    /// take over within the lease time; commits carry the fencing token, so a holder that lost
    /// the lease cannot commit (needs a store with leases: [`crate::MongoCheckpointStore`]).
    pub fn lease(mut self, lease: LeaseConfig) -> Self {
        self.lease = Some(lease);
        self
    }
    /// Runs up to `n` handlers at once while keeping server order per `documentKey`: events of
    /// one document run one after the other, events without a `documentKey` (drop,
    /// invalidate…) wait for everything before them and run alone. The checkpoint advances to
    /// just before the oldest unfinished event, so a crash redelivers, never skips. Reading goes
    /// on while handlers run (a slow document does not hold up the others), up to
    /// [`buffer`](Self::buffer) unfinished events. `CommitPolicy::EveryBatch` commits whenever
    /// the handlers caught up with what was read, and at least every second while they have
    /// not. Needs [`handler`](Self::handler), not a batch handler.
    pub fn partition_by_document_key(mut self, n: usize) -> Self {
        self.partitions = n;
        self
    }
    /// Documents per page of a snapshot (default 1000); progress is committed by the commit
    /// policy, at the latest after every page.
    pub fn snapshot_page_size(mut self, documents: u32) -> Self {
        self.snapshot_page = documents;
        self
    }
    /// When the consumer's keel-health component (`change_stream:{name}`) is degraded: stalled
    /// longer than `stalled_after`, or a checkpoint further behind than
    /// `oplog_window_fraction` of the oplog window (default 60 s, 0.5, judged every 10 s).
    pub fn health_limits(mut self, limits: crate::HealthLimits) -> Self {
        self.health_limits = limits;
        self
    }
    /// Called with notices (gaps, restarts).
    pub fn on_notice(mut self, f: impl Fn(Notice) + Send + Sync + 'static) -> Self {
        self.on_notice = Some(Arc::new(f));
        self
    }

    /// Validates the settings and starts the consumer on the current tokio runtime.
    pub fn spawn(self) -> Result<RunningConsumer, Error> {
        validate_name(&self.name)?;
        let target = self.target.clone().ok_or_else(|| {
            Error::config(format!(
                "consumer '{}' has no target: call .collection(db, coll), .database(db) or \
                 .deployment()",
                self.name
            ))
        })?;
        let Some(handler) = self.handler else {
            return Err(Error::config(format!(
                "consumer '{}' has no handler: call .handler(..) or .batch_handler(..)",
                self.name
            )));
        };
        if self.retry.max_attempts == 0 {
            return Err(Error::config(
                "handler_retry.max_attempts must be at least 1",
            ));
        }
        if self.partitions == 0 {
            return Err(Error::config(format!(
                "consumer '{}': partition_by_document_key needs n of at least 1",
                self.name
            )));
        }
        if self.partitions > 1 && matches!(handler, Handler::Batch(_)) {
            return Err(Error::config(format!(
                "consumer '{}': partition_by_document_key runs one handler per event; use \
                 .handler(..) instead of .batch_handler(..)",
                self.name
            )));
        }
        let snapshots = self.start_from == StartFrom::Snapshot
            || self.history_lost == HistoryLostPolicy::Resnapshot;
        if snapshots && !matches!(target, WatchTarget::Collection { .. }) {
            return Err(Error::config(format!(
                "consumer '{}': a snapshot (StartFrom::Snapshot, HistoryLostPolicy::Resnapshot) \
                 copies one collection; watch it with .collection(db, coll)",
                self.name
            )));
        }
        if self.snapshot_page == 0 {
            return Err(Error::config(
                "snapshot_page_size needs at least 1 document",
            ));
        }
        if matches!(self.commit, CommitPolicy::EveryN(0)) {
            return Err(Error::config("CommitPolicy::EveryN needs n of at least 1"));
        }
        if let Some(lease) = &self.lease
            && (lease.renew_every.is_zero() || lease.renew_every >= lease.duration)
        {
            return Err(Error::config(format!(
                "lease of consumer '{}': renew_every ({:?}) must be above zero and below the \
                 lease duration ({:?})",
                self.name, lease.renew_every, lease.duration
            )));
        }
        let limits = self.health_limits;
        if !(limits.oplog_window_fraction > 0.0 && limits.oplog_window_fraction <= 1.0)
            || limits.check_every.is_zero()
        {
            return Err(Error::config(format!(
                "health limits of consumer '{}': oplog_window_fraction must be above 0 and at \
                 most 1 (it is {}), and check_every above zero",
                self.name, limits.oplog_window_fraction
            )));
        }
        let backoff = |what: &str, config| {
            keel_retry::Backoff::new(config).map_err(|e| Error::config(format!("{what}: {e}")))
        };
        let mut pipeline = self.pipeline;
        if self.split_large_events && !pipeline.iter().any(crate::split::is_split_stage) {
            pipeline.push(crate::split::stage());
        }
        let spec = StreamSpec {
            target,
            pipeline,
            full_document: self.full_document,
            full_document_before_change: self.full_document_before_change,
            batch_size: self.batch_size,
            max_await_time: self.max_await_time,
            resume_backoff: backoff("resume backoff", self.resume_backoff)?,
            resume_budget: crate::pacing::ResumeBudget::new(self.resume_budget)
                .map_err(|e| Error::config(format!("resume budget: {e}")))?,
        };
        let (status_tx, status) = watch::channel(ConsumerStatus::Starting);
        let (stop_tx, stop) = watch::channel(false);
        let stats = Arc::new(ConsumerStats::default());
        let stop_error = Arc::new(OnceLock::new());
        let engine = Engine {
            keel: self.keel,
            name: self.name.clone().into(),
            spec: Arc::new(spec),
            store: self
                .store
                .unwrap_or_else(|| Arc::new(MemoryCheckpointStore::new())),
            start_from: self.start_from,
            commit: self.commit,
            handler,
            retry: backoff("handler retry backoff", self.retry.backoff)?,
            max_attempts: self.retry.max_attempts,
            on_failure: self.on_failure,
            history_lost: self.history_lost,
            invalidate: self.invalidate,
            heartbeat: self.heartbeat,
            buffer: self.buffer.max(1),
            on_notice: self.on_notice,
            lease: self.lease,
            partitions: self.partitions,
            snapshot_page: self.snapshot_page,
            fence: None,
            lease_lost: None,
            renewer: None,
            stats: Arc::clone(&stats),
            meters: metrics::Meters::new(&self.name),
            status: status_tx,
            stop,
            interrupted: std::sync::atomic::AtomicBool::new(false),
            stop_error: Arc::clone(&stop_error),
        };
        let keel = engine.keel.clone();
        let task = tokio::spawn(engine.run());
        let (publish, health) = watch::channel(crate::ConsumerHealth::healthy());
        let monitor = crate::health_component::spawn(
            &keel,
            crate::health_component::Monitor {
                name: self.name.clone().into(),
                limits,
                status: status.clone(),
                stats: Arc::clone(&stats),
                window: crate::health_component::read_window(&keel),
                publish,
            },
        );
        Ok(RunningConsumer {
            name: self.name.clone(),
            stop_error,
            status,
            stats,
            stop: stop_tx,
            task,
            health,
            _monitor: monitor,
        })
    }
}

/// A running consumer: status, counters, graceful shutdown.
#[derive(Debug)]
pub struct RunningConsumer {
    name: String,
    stop_error: Arc<OnceLock<Arc<Error>>>,
    status: watch::Receiver<ConsumerStatus>,
    stats: Arc<ConsumerStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), Error>>,
    health: watch::Receiver<crate::ConsumerHealth>,
    /// Reports to keel-health while the consumer exists (dropping it removes the component).
    _monitor: crate::health_component::MonitorGuard,
}

impl RunningConsumer {
    /// The status, as a `watch` channel (clone it to wait for a state).
    pub fn status(&self) -> watch::Receiver<ConsumerStatus> {
        self.status.clone()
    }
    /// The error the consumer stopped with, typed (class, code, labels), without consuming
    /// the consumer: set before the status becomes `Stopped { error: Some(..) }`, so a
    /// status watcher that sees it can read it at once. `None` while running and after a
    /// clean stop. [`wait`](Self::wait) and [`shutdown`](Self::shutdown) still return it too.
    pub fn stop_error(&self) -> Option<Arc<Error>> {
        self.stop_error.get().cloned()
    }
    /// The latest health judgement, as reported to keel-health's component
    /// `change_stream:{name}` (a stopped consumer is `Unhealthy` here; keel-health shows every
    /// non-healthy component as `Degraded`).
    pub fn health(&self) -> crate::ConsumerHealth {
        self.health.borrow().clone()
    }
    /// The name this consumer reports under in keel-health: `change_stream:{name}`.
    pub fn component_name(&self) -> String {
        format!("change_stream:{}", self.name)
    }
    /// Counters since start.
    pub fn stats(&self) -> &ConsumerStats {
        &self.stats
    }
    /// Stops after the event being handled, commits what was handled, and returns how the
    /// consumer ended.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        self.wait().await
    }
    /// Waits until the consumer stops by itself (an error, or an invalidate with the stop
    /// policy).
    pub async fn wait(self) -> Result<(), Error> {
        self.task
            .await
            .unwrap_or_else(|e| Err(Error::config(format!("the consumer task failed: {e}"))))
    }
    /// Kills the consumer at once, without committing (what a crash does; for tests).
    pub fn abort(self) {
        self.task.abort();
    }
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

impl<T> Engine<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    async fn run(mut self) -> Result<(), Error> {
        let result = self.consume().await;
        if let Err(error) = &result {
            let _ = self.stop_error.set(Arc::new(error.clone()));
        }
        // Stop renewing: the lease expires and a standby takes over.
        self.renewer = None;
        let error = result.as_ref().err().map(ToString::to_string);
        metrics::lease_held(&self.name, false);
        let _ = self.status.send(ConsumerStatus::Stopped { error });
        result
    }

    /// Waits for the lease (when configured), then renews it in the background. `false`: shut
    /// down while waiting.
    async fn take_lease(&mut self) -> Result<bool, Error> {
        let Some(lease) = self.lease.clone() else {
            metrics::lease_held(&self.name, true);
            return Ok(true);
        };
        metrics::lease_held(&self.name, false);
        let fence = loop {
            match self
                .store
                .acquire_lease(&self.name, &lease.owner, lease.duration)
                .await
            {
                Ok(Some(fence)) => break fence,
                Ok(None) => {
                    let _ = self.status.send(ConsumerStatus::WaitingForLease);
                }
                Err(e) if e.kind() == keel_core::ErrorKind::Config => return Err(e),
                Err(e) => tracing::warn!(consumer = %self.name, "lease not taken: {e}"),
            }
            tokio::select! {
                changed = self.stop.changed() => {
                    if changed.is_err() || *self.stop.borrow() { return Ok(false); }
                }
                () = tokio::time::sleep(lease.renew_every) => {}
            }
        };
        tracing::info!(consumer = %self.name, owner = %lease.owner, fence, "lease taken");
        metrics::lease_held(&self.name, true);
        self.fence = Some(fence);
        let (lost_tx, lost) = watch::channel(false);
        self.lease_lost = Some(lost);
        let (store, name) = (Arc::clone(&self.store), Arc::clone(&self.name));
        self.renewer = Some(AbortOnDrop(tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(lease.renew_every).await;
                match store
                    .renew_lease(&name, &lease.owner, fence, lease.duration)
                    .await
                {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => break,
                    // Unreachable store: the lease may expire under us; stop handling before.
                    Err(_) if renewed.elapsed() + lease.renew_every >= lease.duration => break,
                    Err(_) => {}
                }
            }
            metrics::lease_held(&name, false);
            let _ = lost_tx.send(true);
        })));
        Ok(true)
    }

    async fn consume(&mut self) -> Result<(), Error> {
        if !self.take_lease().await? {
            return Ok(());
        }
        let stored = self.store.load(&self.name).await?;
        if let Some(c) = &stored {
            self.stats
                .checkpoint_stored(crate::token_time(&c.token).or(c.cluster_time));
        }
        let snapshot = stored
            .as_ref()
            .and_then(|c| SnapshotState::from_token(&c.token));
        let from_checkpoint = stored.as_ref().map(|c| c.token.clone());
        let mut position = Position {
            last_cluster_time: stored.as_ref().and_then(|c| c.cluster_time),
            stored,
            pending: None,
            since_commit: 0,
            last_commit: Instant::now(),
        };
        let mut start = match (from_checkpoint, snapshot, &self.start_from) {
            // A snapshot in progress (or just finished) continues where it stands.
            (Some(_), Some(state), _) => match self.snapshot(&mut position, state).await? {
                Some(start) => start,
                None => return Ok(()),
            },
            // An operator's reset to a time (`keel streams reset --to TIME`).
            (Some(token), None, _) => match start_at_of(&token) {
                Some(at) => StartPoint::AtOperationTime(at),
                // `startAfter` accepts every token `resumeAfter` does, and an invalidate's too.
                None => StartPoint::StartAfter(token),
            },
            (None, _, StartFrom::Now) => StartPoint::Now,
            (None, _, StartFrom::At(at)) => StartPoint::AtOperationTime(*at),
            (None, _, StartFrom::After(token)) => StartPoint::StartAfter(token.clone()),
            (None, _, StartFrom::Snapshot) => match self.new_snapshot(&mut position).await? {
                Some(start) => start,
                None => return Ok(()),
            },
        };
        loop {
            let (tx, rx) = mpsc::channel(self.buffer);
            let reader = Reader {
                keel: self.keel.clone(),
                name: Arc::clone(&self.name),
                spec: Arc::clone(&self.spec),
                stats: Arc::clone(&self.stats),
                status: self.status.clone(),
            };
            let reading = AbortOnDrop(tokio::spawn(reader.run(start.clone(), tx)));
            let ended = if self.partitions > 1 {
                self.drain_partitioned(rx, &mut position).await
            } else {
                self.drain(rx, &mut position).await
            };
            drop(reading);
            match ended {
                Ended::Shutdown => {
                    self.commit_pending(&mut position, false).await?;
                    return Ok(());
                }
                Ended::LeaseLost => {
                    return Err(Error::config(format!(
                        "consumer '{}' lost its lease to another instance and stopped handling; \
                         events after its last commit are the new holder's",
                        self.name
                    )));
                }
                Ended::Invalidated(token) => {
                    self.commit_pending(&mut position, false).await?;
                    match self.invalidate {
                        InvalidatePolicy::Stop => return Ok(()),
                        InvalidatePolicy::Restart => {
                            self.notify(Notice::Restarted);
                            start = StartPoint::StartAfter(token.to_document()?);
                        }
                    }
                }
                Ended::Failed(error) if error.code() == Some(286) => {
                    // Whatever was handled is still committed: the gap starts after it.
                    self.commit_pending(&mut position, false).await?;
                    match self.history_lost {
                        HistoryLostPolicy::Fail => {
                            return Err(Error::config(format!(
                                "consumer '{}' cannot resume: its checkpoint ({}) is no longer \
                                 in the oplog (ChangeStreamHistoryLost); reset it with `keel \
                                 streams reset --name {} --to now` (events in between are lost) \
                                 or enlarge the oplog",
                                self.name,
                                age_of(position.stored.as_ref()),
                                self.name
                            )));
                        }
                        HistoryLostPolicy::RestartFromNow => {
                            metrics::gap(&self.name);
                            let to = now_timestamp();
                            tracing::error!(consumer = %self.name, "change stream history lost: restarting from now, events were lost");
                            self.notify(Notice::Gap {
                                from: position.last_cluster_time,
                                to,
                            });
                            start = StartPoint::Now;
                        }
                        HistoryLostPolicy::Resnapshot => {
                            tracing::warn!(consumer = %self.name, "change stream history lost: copying the collection again");
                            self.notify(Notice::Resnapshot {
                                from: position.last_cluster_time,
                            });
                            match self.new_snapshot(&mut position).await? {
                                Some(next) => start = next,
                                None => return Ok(()),
                            }
                        }
                    }
                }
                Ended::Failed(error) => {
                    self.commit_pending(&mut position, false).await?;
                    return Err(error);
                }
            }
        }
    }

    /// Records the operation time and copies the collection from its first `_id`.
    async fn new_snapshot(&self, position: &mut Position) -> Result<Option<StartPoint>, Error> {
        let WatchTarget::Collection { database, .. } = &self.spec.target else {
            return Err(Error::config("a snapshot needs a collection target"));
        };
        let _ = self.status.send(ConsumerStatus::Snapshotting);
        let at = loop {
            match snapshot::operation_time(&self.keel, database).await {
                Ok(at) => break at,
                Err(e) if e.kind() == keel_core::ErrorKind::Config => return Err(e),
                Err(e) => self.snapshot_pause(&e).await,
            }
        };
        let state = SnapshotState {
            at,
            after: None,
            done: false,
        };
        // Stored at once: a restart continues this snapshot, at this operation time.
        position.pending = Some((state.token().into(), Some(at)));
        self.commit_now(position).await?;
        self.snapshot(position, state).await
    }

    /// Copies the documents after `state.after` as `snapshot` events, page by page, committing
    /// progress; then the stream starts at the snapshot's operation time. `None`: shut down.
    async fn snapshot(
        &self,
        position: &mut Position,
        mut state: SnapshotState,
    ) -> Result<Option<StartPoint>, Error> {
        let WatchTarget::Collection {
            database,
            collection,
        } = &self.spec.target
        else {
            return Err(Error::config(format!(
                "consumer '{}' has a snapshot checkpoint but does not watch a collection; watch \
                 the snapshot's collection or reset the checkpoint",
                self.name
            )));
        };
        let _ = self.status.send(ConsumerStatus::Snapshotting);
        while !state.done {
            if *self.stop.borrow() {
                self.commit_pending(position, false).await?;
                return Ok(None);
            }
            if self.lease_lost.as_ref().is_some_and(|l| *l.borrow()) {
                return Err(Error::config(format!(
                    "consumer '{}' lost its lease to another instance during its snapshot and \
                     stopped; the new holder continues the snapshot",
                    self.name
                )));
            }
            let page = snapshot::page(
                &self.keel,
                database,
                collection,
                state.after.as_ref(),
                self.snapshot_page,
            )
            .await;
            let documents = match page {
                Ok(documents) => documents,
                Err(e) if e.kind() == keel_core::ErrorKind::Config => return Err(e),
                Err(e) => {
                    self.snapshot_pause(&e).await;
                    let _ = self.status.send(ConsumerStatus::Snapshotting);
                    continue;
                }
            };
            let last_page = documents.len() < self.snapshot_page as usize;
            let mut events = Vec::with_capacity(documents.len());
            let mut last = None;
            for document in documents {
                let (raw, token) = snapshot::event(database, collection, state.at, document)?;
                events.push((RawEvent::from_document(raw)?, Token::from_document(&token)));
                last = Some(token);
            }
            if let Some(next) = last.as_ref().and_then(SnapshotState::from_token) {
                state = next;
            }
            if !events.is_empty()
                && let Err(error) = self.handle(events, position).await
            {
                if self.interrupted() {
                    self.commit_pending(position, false).await?;
                    return Ok(None);
                }
                return Err(error);
            }
            if last_page {
                state.done = true;
                position.pending = Some((state.token().into(), Some(state.at)));
                self.commit_now(position).await?;
            } else {
                self.commit_pending(position, true).await?;
            }
        }
        tracing::info!(consumer = %self.name, "snapshot finished; streaming from its operation time");
        Ok(Some(StartPoint::AtOperationTime(state.at)))
    }

    /// A snapshot read failed with an outage: counted as a resume, paced like one.
    async fn snapshot_pause(&self, error: &Error) {
        let class = error.class().as_str();
        bump(&self.stats.resumes);
        metrics::resumed(&self.name, class);
        tracing::warn!(consumer = %self.name, class, "snapshot read failed, retrying: {error}");
        let _ = self
            .status
            .send(ConsumerStatus::Resuming { attempt: 1, class });
        let mut attempts = crate::pacing::Attempts::default();
        attempts
            .wait(&self.spec.resume_backoff, &self.spec.resume_budget)
            .await;
        let _ = self.keel.ready().await;
    }

    fn notify(&self, notice: Notice) {
        if let Some(f) = &self.on_notice {
            f(notice);
        }
    }

    async fn drain(&mut self, mut rx: mpsc::Receiver<Feed>, position: &mut Position) -> Ended {
        loop {
            let lost = &mut self.lease_lost;
            let lease_lost = async {
                match lost {
                    Some(lost) => {
                        let _ = lost.wait_for(|l| *l).await;
                    }
                    None => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                biased;
                () = lease_lost => return Ended::LeaseLost,
                changed = self.stop.changed() => {
                    if changed.is_err() || *self.stop.borrow() { return Ended::Shutdown; }
                    continue;
                }
                item = rx.recv() => item,
            };
            let Some(first) = first else {
                return Ended::Failed(Error::config("the change stream reader stopped"));
            };
            // Everything already read is one batch; an end or failure closes it.
            let mut events = Vec::new();
            let mut tail = None;
            let mut quiet = None;
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Feed::Event { raw, token } => events.push((raw, token)),
                    Feed::Quiet { token } => quiet = Some(token),
                    other => {
                        tail = Some(other);
                        break;
                    }
                }
                if quiet.is_some() {
                    break;
                }
                next = rx.try_recv().ok();
            }
            let mut invalidated = None;
            if !events.is_empty() {
                self.stats.progress.busy();
                if let Some((raw, token)) = events.last()
                    && matches!(raw.as_raw().get_str("operationType"), Ok("invalidate"))
                {
                    invalidated = Some(token.clone());
                }
                if let Err(error) = self.handle(events, position).await {
                    if self.interrupted() {
                        return Ended::Shutdown;
                    }
                    return Ended::Failed(error);
                }
                if let Err(error) = self.commit_pending(position, true).await {
                    return Ended::Failed(error);
                }
                self.stats.progress.idle();
            }
            if let Some(token) = quiet {
                self.stats.progress.idle();
                // Nothing unhandled precedes a quiet batch's token (the feed is ordered).
                position.pending = Some((token, position.last_cluster_time));
                if position.last_commit.elapsed() >= self.heartbeat {
                    match self.commit_now(position).await {
                        Ok(true) => bump(&self.stats.heartbeats),
                        Ok(false) => {}
                        Err(error) => return Ended::Failed(error),
                    }
                }
                self.meters
                    .checkpoint_age
                    .set(position.last_commit.elapsed().as_secs_f64());
            }
            match tail {
                Some(Feed::End) => {
                    return Ended::Invalidated(invalidated.unwrap_or_else(|| {
                        position
                            .pending
                            .as_ref()
                            .map_or_else(|| Document::new().into(), |p| p.0.clone())
                    }));
                }
                Some(Feed::Failed(error)) => return Ended::Failed(error),
                _ => {}
            }
        }
    }

    /// [`drain`](Self::drain) with `partition_by_document_key(n)`: events go to a
    /// [`partition::Scheduler`] as they are read; each finished prefix moves the position.
    async fn drain_partitioned(
        &self,
        mut rx: mpsc::Receiver<Feed>,
        position: &mut Position,
    ) -> Ended {
        /// At least this often the finished prefix is committed under `EveryBatch`.
        const BUSY_COMMIT: Duration = Duration::from_secs(1);
        let mut stop = self.stop.clone();
        let mut lost = self.lease_lost.clone();
        let Handler::Each(handler) = &self.handler else {
            return Ended::Failed(Error::config("partitioning needs a per-event handler"));
        };
        let run_one = |event: ChangeEvent<T>| -> BoxFuture<'_, Result<(), Error>> {
            let handler = Arc::clone(handler);
            async move { self.run_event(&handler, event).await }.boxed()
        };
        let mut scheduler = partition::Scheduler::new(&run_one, self.partitions, self.buffer);
        // After the stream ended: finish what runs, then end this way.
        let mut ending: Option<Ended> = None;
        let mut invalidated = None;
        loop {
            if ending.is_some() && scheduler.idle() {
                return match ending.take() {
                    Some(Ended::Invalidated(token)) => {
                        Ended::Invalidated(invalidated.take().unwrap_or(token))
                    }
                    Some(other) => other,
                    None => Ended::Shutdown,
                };
            }
            let lease_lost = async {
                match lost.as_mut() {
                    Some(lost) => {
                        let _ = lost.wait_for(|l| *l).await;
                    }
                    None => std::future::pending().await,
                }
            };
            let accepting = ending.is_none() && scheduler.accepting();
            let advance = tokio::select! {
                biased;
                () = lease_lost => return Ended::LeaseLost,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() { return Ended::Shutdown; }
                    continue;
                }
                done = scheduler.next(), if !scheduler.idle() => match done {
                    Some(Ok(advance)) => advance,
                    Some(Err(_)) if self.interrupted() => return Ended::Shutdown,
                    Some(Err(error)) => return Ended::Failed(error),
                    None => None,
                },
                item = rx.recv(), if accepting => match item {
                    Some(Feed::Event { raw, token }) => {
                        if matches!(raw.as_raw().get_str("operationType"), Ok("invalidate")) {
                            invalidated = Some(token.clone());
                        }
                        let event = match ChangeEvent::<T>::from_raw(raw) {
                            Ok(event) => event,
                            Err(error) => return Ended::Failed(error),
                        };
                        self.stats.progress.busy();
                        scheduler.push(partition::Item {
                            key: partition::partition_key(event.raw.as_raw()),
                            token,
                            cluster_time: event.cluster_time,
                            event,
                        });
                        None
                    }
                    Some(Feed::Quiet { token }) => {
                        if scheduler.idle() {
                            self.stats.progress.idle();
                        }
                        let advance = scheduler.marker(token, position.last_cluster_time);
                        if let Some(a) = advance {
                            // Only a quiet token: nothing was handled, a heartbeat may be due.
                            position.pending = Some((a.token.clone(), position.last_cluster_time));
                            if a.count == 0 {
                                if position.last_commit.elapsed() >= self.heartbeat {
                                    match self.commit_now(position).await {
                                        Ok(true) => bump(&self.stats.heartbeats),
                                        Ok(false) => {}
                                        Err(error) => return Ended::Failed(error),
                                    }
                                }
                                None
                            } else {
                                Some(a)
                            }
                        } else {
                            None
                        }
                    }
                    Some(Feed::End) => {
                        ending = Some(Ended::Invalidated(
                            position
                                .pending
                                .as_ref()
                                .map_or_else(|| Document::new().into(), |p| p.0.clone()),
                        ));
                        None
                    }
                    Some(Feed::Failed(error)) => return Ended::Failed(error),
                    None => return Ended::Failed(Error::config("the change stream reader stopped")),
                },
            };
            if let Some(a) = advance {
                if let Err(error) = self
                    .handled(position, a.token, a.cluster_time, a.count)
                    .await
                {
                    return Ended::Failed(error);
                }
                let caught_up = scheduler.idle() && rx.is_empty();
                if caught_up {
                    self.stats.progress.idle();
                }
                let due = match self.commit {
                    CommitPolicy::EveryBatch => {
                        caught_up || position.last_commit.elapsed() >= BUSY_COMMIT
                    }
                    _ => false,
                };
                if due && let Err(error) = self.commit_now(position).await {
                    return Ended::Failed(error);
                }
            }
        }
    }

    async fn handle(
        &self,
        events: Vec<(RawEvent, Token)>,
        position: &mut Position,
    ) -> Result<(), Error> {
        let mut parsed = Vec::with_capacity(events.len());
        for (raw, token) in events {
            parsed.push((ChangeEvent::<T>::from_raw(raw)?, token));
        }
        match &self.handler {
            Handler::Each(handler) => {
                for (event, token) in parsed {
                    let cluster_time = event.cluster_time;
                    self.run_event(handler, event).await?;
                    self.handled(position, token, cluster_time, 1).await?;
                }
            }
            Handler::Batch(handler) => {
                let Some((last, token)) = parsed.last().map(|(e, t)| (e.cluster_time, t.clone()))
                else {
                    return Ok(());
                };
                let n = u32::try_from(parsed.len()).unwrap_or(u32::MAX);
                let events: Vec<_> = parsed.into_iter().map(|(e, _)| e).collect();
                let handler = Arc::clone(handler);
                if let Err((error, attempts)) = self.attempts(|| handler(events.clone())).await? {
                    for event in events {
                        self.fail(event, error.clone(), attempts).await?;
                    }
                }
                self.handled(position, token, last, n).await?;
            }
        }
        Ok(())
    }

    /// Runs the per-event handler until it succeeds or `max_attempts` failed (backoff in
    /// between), then applies the failure policy. The event is moved into each call: what a
    /// retry or the policy needs is its shared raw document (an `Arc`, no copy: the copy kept
    /// for a retry was the largest per-event cost in a callgrind profile), parsed again only
    /// after a failure, and before a last attempt under the stop policy only its id is kept.
    async fn run_event(&self, handler: &EachFn<T>, event: ChangeEvent<T>) -> Result<(), Error> {
        let mut previous = Duration::ZERO;
        let mut event = event;
        let mut attempt = 0;
        loop {
            let last = HandlerRetry::exhausted(self.max_attempts, attempt + 1);
            let keep = if last && matches!(self.on_failure, FailurePolicy::Stop) {
                Err(event.event_id().clone())
            } else {
                Ok(event.raw.clone())
            };
            let Err(error) = handler(event).await else {
                return Ok(());
            };
            bump(&self.stats.handler_errors);
            metrics::handler_error(&self.name);
            attempt += 1;
            let again = match keep {
                Err(id) => return Err(self.stop_error(&id, &error, attempt)),
                Ok(raw) => ChangeEvent::<T>::from_raw(raw)?,
            };
            if last {
                return self.fail(again, error, attempt).await;
            }
            event = again;
            let delay = self
                .retry
                .delay(attempt - 1, previous, rand::random::<f64>());
            previous = delay;
            self.retry_sleep(delay).await?;
        }
    }

    /// Waits between handler attempts; a shutdown ends the wait (the event stays uncommitted,
    /// so it is delivered again after a restart).
    async fn retry_sleep(&self, delay: Duration) -> Result<(), Error> {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            _ = stop.wait_for(|s| *s) => {
                self.interrupted.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(Error::config(format!(
                    "consumer '{}' was shut down while retrying its handler",
                    self.name
                )))
            }
        }
    }

    /// Whether a handler retry was cut short by a shutdown (the drain then ends as one).
    fn interrupted(&self) -> bool {
        self.interrupted.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn stop_error(&self, event_id: &Document, error: &str, attempts: u32) -> Error {
        Error::config(format!(
            "consumer '{}' stopped: its handler failed {attempts} times on event {event_id}: \
             {error}",
            self.name
        ))
    }

    /// Runs `call` until it succeeds or `max_attempts` failed, with backoff in between.
    /// `Ok(Err(..))`: every attempt failed; `Err`: shut down while waiting to retry.
    async fn attempts<F>(&self, call: F) -> Result<Result<(), (String, u32)>, Error>
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>>,
    {
        let mut previous = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            let Err(error) = call().await else {
                return Ok(Ok(()));
            };
            bump(&self.stats.handler_errors);
            metrics::handler_error(&self.name);
            attempt = attempt.saturating_add(1);
            if HandlerRetry::exhausted(self.max_attempts, attempt) {
                return Ok(Err((error, attempt)));
            }
            let delay = self
                .retry
                .delay(attempt - 1, previous, rand::random::<f64>());
            previous = delay;
            self.retry_sleep(delay).await?;
        }
    }

    /// Applies the failure policy to an event whose handler failed every attempt.
    async fn fail(&self, event: ChangeEvent<T>, error: String, attempts: u32) -> Result<(), Error> {
        match &self.on_failure {
            FailurePolicy::Stop => Err(self.stop_error(event.event_id(), &error, attempts)),
            FailurePolicy::Fallback(fallback) => fallback(event, error).await.map_err(|e| {
                Error::config(format!(
                    "consumer '{}' stopped: its fallback failed: {e}",
                    self.name
                ))
            }),
            FailurePolicy::DeadLetter {
                database,
                collection,
            } => {
                let record = doc! {
                    // One record per consumer and event, so a redelivery does not duplicate it.
                    "_id": {"consumer": self.name.as_ref(), "event": event.event_id().clone()},
                    "consumer": self.name.as_ref(),
                    "event": (*event.raw).clone(),
                    "error": error,
                    "attempts": i64::from(attempts),
                    "at": DateTime::now(),
                };
                let (db, coll) = (database.clone(), collection.clone());
                self.keel
                    .run(Operation::write(
                        "change_stream.dead_letter",
                        true,
                        move |c| {
                            let (db, coll, record) = (db.clone(), coll.clone(), record.clone());
                            async move {
                                let id = record.get("_id").cloned();
                                c.database(&db)
                                    .collection::<Document>(&coll)
                                    .replace_one(doc! {"_id": id}, record)
                                    .upsert(true)
                                    .await
                            }
                        },
                    ))
                    .await?;
                bump(&self.stats.dead_lettered);
                metrics::dead_lettered(&self.name);
                Ok(())
            }
        }
    }

    async fn handled(
        &self,
        position: &mut Position,
        token: Token,
        cluster_time: Option<Timestamp>,
        n: u32,
    ) -> Result<(), Error> {
        self.stats
            .handled
            .fetch_add(u64::from(n), std::sync::atomic::Ordering::Relaxed);
        self.meters.handled.increment(u64::from(n));
        self.stats.progress.mark();
        if let Some(ts) = cluster_time {
            position.last_cluster_time = Some(ts);
            let lag = now_timestamp().time.saturating_sub(ts.time);
            self.meters.lag.set(f64::from(lag));
        }
        position.pending = Some((token, position.last_cluster_time));
        position.since_commit = position.since_commit.saturating_add(n);
        let due = match self.commit {
            CommitPolicy::EveryEvent => true,
            CommitPolicy::EveryN(limit) => position.since_commit >= limit,
            CommitPolicy::Every(period) => position.last_commit.elapsed() >= period,
            CommitPolicy::EveryBatch => false,
        };
        if due {
            self.commit_now(position).await?;
        }
        Ok(())
    }

    /// Commits at the end of a batch when the policy says so, or always (`end_of_batch` false:
    /// shutdown, stop).
    async fn commit_pending(
        &self,
        position: &mut Position,
        end_of_batch: bool,
    ) -> Result<(), Error> {
        let due = !end_of_batch
            || match self.commit {
                CommitPolicy::EveryBatch => true,
                CommitPolicy::Every(period) => position.last_commit.elapsed() >= period,
                CommitPolicy::EveryEvent | CommitPolicy::EveryN(_) => false,
            };
        if due {
            self.commit_now(position).await?;
        }
        Ok(())
    }

    /// Stores the pending token, retrying store failures with backoff (never reporting a
    /// checkpoint as stored before the store said so). `Ok(false)`: nothing new to commit.
    async fn commit_now(&self, position: &mut Position) -> Result<bool, Error> {
        let Some((token, cluster_time)) = position.pending.clone() else {
            return Ok(false);
        };
        let token = token.to_document()?;
        if position.stored.as_ref().is_some_and(|c| c.token == token) {
            position.pending = None;
            return Ok(false);
        }
        let expected = position.stored.as_ref().map_or(0, |c| c.version);
        let mut previous = Duration::ZERO;
        let mut attempt = 0;
        loop {
            match self
                .store
                .commit(&self.name, expected, &token, cluster_time, self.fence)
                .await
            {
                Ok(checkpoint) => {
                    self.stats.checkpoint_stored(
                        crate::token_time(&checkpoint.token).or(checkpoint.cluster_time),
                    );
                    bump(&self.stats.commits);
                    self.stats.committed_now();
                    self.meters.checkpoint_age.set(0.0);
                    position.stored = Some(checkpoint);
                    position.pending = None;
                    position.since_commit = 0;
                    position.last_commit = Instant::now();
                    return Ok(true);
                }
                Err(e @ CommitError::Store { .. }) => {
                    tracing::warn!(consumer = %self.name, "checkpoint commit failed, retrying: {e}");
                    let delay =
                        self.spec
                            .resume_backoff
                            .delay(attempt, previous, rand::random::<f64>());
                    previous = delay;
                    attempt = attempt.saturating_add(1);
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(Error::config(e.to_string())),
            }
        }
    }
}
