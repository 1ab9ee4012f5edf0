//! The builder: targets, stream options, handler, policies, and `spawn`, which checks the
//! settings and starts the engine and its health monitor.

use std::{
    marker::PhantomData,
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures_util::future::FutureExt;
use keel_core::Error;
use mongodb::{
    bson::Document,
    options::{FullDocumentBeforeChangeType, FullDocumentType},
};
use mongokeel::Keel;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::{
    ChangeEvent, CheckpointStore, CommitPolicy, ConsumerStats, ConsumerStatus, FailurePolicy,
    HandlerRetry, HistoryLostPolicy, InvalidatePolicy, LeaseConfig, MemoryCheckpointStore, Notice,
    StartFrom, WatchTarget, checkpoint::validate_name, metrics, reader::StreamSpec,
};

use super::{Engine, Handler, NoticeFn, running::RunningConsumer};

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
