//! `RunningConsumer`: the caller's handle on a started consumer.

use std::sync::{Arc, OnceLock};

use keel_core::Error;
use tokio::{sync::watch, task::JoinHandle};

use crate::{ConsumerStats, ConsumerStatus};

/// A running consumer: status, counters, graceful shutdown.
#[derive(Debug)]
pub struct RunningConsumer {
    pub(super) name: String,
    pub(super) stop_error: Arc<OnceLock<Arc<Error>>>,
    pub(super) status: watch::Receiver<ConsumerStatus>,
    pub(super) stats: Arc<ConsumerStats>,
    pub(super) stop: watch::Sender<bool>,
    pub(super) task: JoinHandle<Result<(), Error>>,
    pub(super) health: watch::Receiver<crate::ConsumerHealth>,
    /// Reports to keel-health while the consumer exists (dropping it removes the component).
    pub(super) _monitor: crate::health_component::MonitorGuard,
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
