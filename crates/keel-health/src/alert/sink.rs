//! Alert sinks (`tracing` log, application channel) and the dispatcher that feeds each sink in
//! order from its own queue, so a slow webhook never delays a check or another sink.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::{alert::AlertEvent, alert::Transition, metrics::names};

/// Why a sink could not deliver an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The receiving side is gone (a dropped channel receiver).
    #[error("the alert receiver is closed")]
    Closed,
    /// The receiving side is full; the event was dropped.
    #[error("the alert queue is full")]
    Full,
    /// Every delivery attempt failed. The detail names no URL path or secret.
    #[error("alert delivery failed after {attempts} attempt(s): {detail}")]
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        detail: String,
    },
}

/// Somewhere alert events go.
///
/// Events reach a sink one at a time, in order, from a bounded queue of its own
/// (64 events; more are dropped and counted as `dropped`).
///
/// ```
/// use futures_util::future::BoxFuture;
/// use keel_health::{AlertEvent, AlertSink, SinkError};
///
/// struct Pager;
/// impl AlertSink for Pager {
///     fn name(&self) -> &'static str { "pager" }
///     fn deliver(&self, event: AlertEvent) -> BoxFuture<'static, Result<(), SinkError>> {
///         Box::pin(async move {
///             println!("page the on-call: {}", event.summary());
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait AlertSink: Send + Sync + 'static {
    /// A short fixed name, used as the `sink` metric label.
    fn name(&self) -> &'static str;

    /// Delivers one event (retrying inside if the sink wants to).
    fn deliver(&self, event: AlertEvent) -> BoxFuture<'static, Result<(), SinkError>>;
}

/// Logs alerts with `tracing` on target `keel_health`: `warn` when raised, `info` when cleared.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogSink;

impl AlertSink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    fn deliver(&self, event: AlertEvent) -> BoxFuture<'static, Result<(), SinkError>> {
        match event.transition {
            Transition::Raised => tracing::warn!(
                target: "keel_health",
                alert = event.kind.as_str(),
                value = %event.value,
                threshold = %event.threshold,
                "keel alert raised"
            ),
            Transition::Cleared => tracing::info!(
                target: "keel_health",
                alert = event.kind.as_str(),
                value = %event.value,
                threshold = %event.threshold,
                "keel alert cleared"
            ),
        }
        Box::pin(async { Ok(()) })
    }
}

/// Hands alerts to the application over a bounded `tokio` channel.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (sink, mut alerts) = keel_health::ChannelSink::new(16);
/// // … HealthMonitor::builder(…).sink(sink) …
/// # drop(sink);
/// while let Some(event) = alerts.recv().await {
///     println!("{}", event.summary());
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ChannelSink {
    sender: mpsc::Sender<AlertEvent>,
}

impl ChannelSink {
    /// A sink and the receiver the application reads; `capacity` is at least 1.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<AlertEvent>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender }, receiver)
    }
}

impl AlertSink for ChannelSink {
    fn name(&self) -> &'static str {
        "channel"
    }

    fn deliver(&self, event: AlertEvent) -> BoxFuture<'static, Result<(), SinkError>> {
        // Never wait on the application: a reader that stalls loses events, not the monitor.
        let result = self.sender.try_send(event).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => SinkError::Full,
            mpsc::error::TrySendError::Closed(_) => SinkError::Closed,
        });
        Box::pin(async move { result })
    }
}

/// Events each sink's queue holds before new ones are dropped.
const QUEUE: usize = 64;

/// Feeds every sink from its own queue and worker task.
#[derive(Debug, Default)]
pub(crate) struct Dispatcher {
    queues: Vec<(&'static str, mpsc::Sender<AlertEvent>)>,
}

impl Dispatcher {
    /// Spawns one worker per sink; workers end when the dispatcher is dropped.
    pub(crate) fn spawn(sinks: Vec<Arc<dyn AlertSink>>) -> Self {
        let queues = sinks
            .into_iter()
            .map(|sink| {
                let (sender, mut receiver) = mpsc::channel::<AlertEvent>(QUEUE);
                let name = sink.name();
                tokio::spawn(async move {
                    while let Some(event) = receiver.recv().await {
                        let outcome = match sink.deliver(event).await {
                            Ok(()) => "delivered",
                            Err(err) => {
                                tracing::warn!(
                                    target: "keel_health",
                                    sink = name,
                                    error = %err,
                                    "keel alert not delivered"
                                );
                                "failed"
                            }
                        };
                        metrics::counter!(names::ALERT_DELIVERIES, "sink" => name, "outcome" => outcome)
                            .increment(1);
                    }
                });
                (name, sender)
            })
            .collect();
        Self { queues }
    }

    pub(crate) fn dispatch(&self, event: &AlertEvent) {
        for (name, queue) in &self.queues {
            if queue.try_send(event.clone()).is_err() {
                tracing::warn!(target: "keel_health", sink = *name, "keel alert queue full; event dropped");
                metrics::counter!(names::ALERT_DELIVERIES, "sink" => *name, "outcome" => "dropped")
                    .increment(1);
            }
        }
    }
}
