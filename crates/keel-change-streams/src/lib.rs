//! Change-stream consumers on Keel that never miss an event.
//!
//! A [`ChangeConsumer`] watches a collection, a database or the deployment, hands every event to
//! your handler in server order, and commits the resume token to a [`CheckpointStore`] only
//! after the handler returned `Ok` (at least once: after a crash it restarts from the last
//! checkpoint, so an event may be redelivered, never skipped; [`ChangeEvent::event_id`] is
//! stable for deduplication). Resumes follow the Change Streams specification ([`resume`]),
//! paced by a backoff and gated by `Keel::ready`. See the README for an example.

mod checkpoint;
mod consumer;
mod event;
mod health;
mod health_component;
pub mod metrics;
mod oplog_window;
mod options;
mod pacing;
mod partition;
mod reader;
pub mod resume;
mod snapshot;
mod split;
mod status;
mod token;

pub use checkpoint::{
    CHECKPOINT_COLLECTION, Checkpoint, CheckpointStore, CommitError, FileCheckpointStore,
    MemoryCheckpointStore, MongoCheckpointStore, start_at_token,
};
pub use consumer::{ChangeConsumer, ChangeConsumerBuilder, RunningConsumer};
pub use event::{ChangeEvent, Namespace, OperationType, RawEvent};
pub use health::{ConsumerHealth, HealthLimits};
pub use oplog_window::{OplogWindow, oplog_window, token_time};
pub use options::{
    CommitPolicy, FailurePolicy, Fallback, HandlerRetry, HistoryLostPolicy, InvalidatePolicy,
    LeaseConfig, Notice, StartFrom, WatchTarget,
};
pub use status::{ConsumerStats, ConsumerStatus};
