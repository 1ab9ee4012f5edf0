//! The consumer as a keel-health component (`change_stream:{name}`): a task that judges the
//! consumer every `check_every` and on every status change, reads the oplog window, and
//! reports degraded (with the reasons as one sentence) or healthy.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures_util::future::BoxFuture;
use keel_health::ComponentReporter;
use mongokeel::Keel;
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use crate::{
    ConsumerStats, ConsumerStatus, HealthLimits, OplogWindow,
    health::{self, ConsumerHealth, Observation},
};

/// Where the judgement goes: keel-health's component reporter, or a recorder in tests.
pub(crate) trait ComponentSink: Send + Sync + 'static {
    fn degraded(&self, detail: &str);
    fn healthy(&self);
}

/// Reads the oplog window (`None`: unknown or none).
pub(crate) type WindowFn = Arc<dyn Fn() -> BoxFuture<'static, Option<OplogWindow>> + Send + Sync>;

pub(crate) struct Monitor {
    pub(crate) name: Arc<str>,
    pub(crate) limits: HealthLimits,
    pub(crate) status: watch::Receiver<ConsumerStatus>,
    pub(crate) stats: Arc<ConsumerStats>,
    pub(crate) window: WindowFn,
    /// The latest judgement, for `RunningConsumer::health`.
    pub(crate) publish: watch::Sender<ConsumerHealth>,
}

fn same_kind(a: &ConsumerStatus, b: &ConsumerStatus) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

impl Monitor {
    pub(crate) async fn run(mut self, sink: impl ComponentSink) {
        let mut current = self.status.borrow().clone();
        let mut since = Instant::now();
        let mut window = None;
        let mut window_read: Option<Instant> = None;
        let mut reported: Option<Option<String>> = None;
        loop {
            let status = self.status.borrow_and_update().clone();
            if !same_kind(&status, &current) {
                since = Instant::now();
            }
            current = status;
            if window_read.is_none_or(|at| at.elapsed() >= self.limits.check_every) {
                window = (self.window)().await;
                window_read = Some(Instant::now());
            }
            let observation = Observation {
                status: &current,
                in_status: since.elapsed(),
                stuck_for: self.stats.progress.stuck_for(),
                checkpoint: self.stats.checkpoint_time(),
                window,
                since_commit: self.stats.since_last_commit(),
            };
            let judged = health::evaluate(&self.name, &observation, self.limits);
            let detail = (!judged.reasons.is_empty()).then(|| judged.reasons.join("; "));
            if reported.as_ref() != Some(&detail) {
                match &detail {
                    Some(detail) => sink.degraded(detail),
                    None => sink.healthy(),
                }
                reported = Some(detail);
            }
            self.publish.send_replace(judged);
            let stopped = matches!(current, ConsumerStatus::Stopped { .. });
            tokio::select! {
                changed = self.status.changed(), if !stopped => {
                    if changed.is_err() {
                        // The consumer is gone; its last status stays reported until the
                        // reporter is dropped with the `RunningConsumer`.
                        std::future::pending::<()>().await;
                    }
                }
                () = tokio::time::sleep(self.limits.check_every.max(Duration::from_millis(1))) => {}
            }
        }
    }
}

/// Reads the oplog window through `keel`; a failure (no access to `local`, an outage) is
/// logged and counts as unknown, so the window check is skipped, not failed.
pub(crate) fn read_window(keel: &Keel) -> WindowFn {
    let keel = keel.clone();
    Arc::new(move || {
        let keel = keel.clone();
        Box::pin(async move {
            match crate::oplog_window(&keel).await {
                Ok(window) => window,
                Err(error) => {
                    tracing::debug!("oplog window not read, its check is skipped: {error}");
                    None
                }
            }
        })
    })
}

/// keel-health's reporter, shared by the monitor task and the `RunningConsumer`, so dropping
/// the consumer removes the component at once (an aborted task is dropped only later).
#[derive(Clone, Debug)]
struct SharedReporter(Arc<Mutex<Option<ComponentReporter>>>);

impl ComponentSink for SharedReporter {
    fn degraded(&self, detail: &str) {
        if let Some(r) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            r.degraded(detail);
        }
    }
    fn healthy(&self) {
        if let Some(r) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            r.healthy();
        }
    }
}

/// The running monitor: stops it and removes the component when dropped.
#[derive(Debug)]
pub(crate) struct MonitorGuard {
    task: JoinHandle<()>,
    reporter: SharedReporter,
}

impl Drop for MonitorGuard {
    fn drop(&mut self) {
        self.task.abort();
        drop(
            self.reporter
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
}

/// Starts the monitor, reporting as keel-health component `change_stream:{name}`.
pub(crate) fn spawn(keel: &Keel, monitor: Monitor) -> MonitorGuard {
    let reporter = SharedReporter(Arc::new(Mutex::new(Some(
        keel.health()
            .component(format!("change_stream:{}", monitor.name)),
    ))));
    MonitorGuard {
        task: tokio::spawn(monitor.run(reporter.clone())),
        reporter,
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::Timestamp;

    use super::*;

    #[derive(Clone, Default)]
    struct Recorder(Arc<std::sync::Mutex<Vec<Option<String>>>>);

    impl ComponentSink for Recorder {
        fn degraded(&self, detail: &str) {
            self.0.lock().unwrap().push(Some(detail.to_owned()));
        }
        fn healthy(&self) {
            self.0.lock().unwrap().push(None);
        }
    }

    impl Recorder {
        fn last(&self) -> Option<Option<String>> {
            self.0.lock().unwrap().last().cloned()
        }
    }

    fn ts(time: u32) -> Timestamp {
        Timestamp { time, increment: 1 }
    }

    /// Lets the monitor task run what is ready at the current (paused) time.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stalls_and_an_old_checkpoint_degrade_the_component_and_recover() {
        let (status_tx, status) = watch::channel(ConsumerStatus::Running);
        let stats = Arc::new(ConsumerStats::default());
        let window = OplogWindow {
            first: ts(1000),
            last: ts(1600),
        };
        let (publish, health) = watch::channel(ConsumerHealth::healthy());
        let monitor = Monitor {
            name: "orders".into(),
            limits: HealthLimits {
                stalled_after: Duration::from_secs(30),
                check_every: Duration::from_secs(5),
                ..Default::default()
            },
            status,
            stats: Arc::clone(&stats),
            window: Arc::new(move || Box::pin(async move { Some(window) })),
            publish,
        };
        let sink = Recorder::default();
        let task = tokio::spawn(monitor.run(sink.clone()));
        settle().await;
        assert_eq!(sink.last(), Some(None), "healthy at first");

        // Resuming: degraded only after `stalled_after`.
        status_tx.send_replace(ConsumerStatus::Resuming {
            attempt: 1,
            class: "network",
        });
        settle().await;
        tokio::time::advance(Duration::from_secs(25)).await;
        settle().await;
        assert_eq!(sink.last(), Some(None));
        tokio::time::advance(Duration::from_secs(6)).await;
        settle().await;
        let detail = sink.last().flatten().expect("degraded");
        assert!(detail.contains("resuming for at least 30 s"), "{detail}");
        assert_eq!(health.borrow().status, keel_health::HealthStatus::Degraded);
        // Further checks, and further attempts, do not report a new sentence.
        let reports = sink.0.lock().unwrap().len();
        for attempt in 2..6 {
            status_tx.send_modify(|s| {
                *s = ConsumerStatus::Resuming {
                    attempt,
                    class: "network",
                }
            });
            tokio::time::advance(Duration::from_secs(5)).await;
            settle().await;
        }
        assert_eq!(sink.0.lock().unwrap().len(), reports, "{:?}", sink.last());

        // Back to running: healthy at once.
        status_tx.send_replace(ConsumerStatus::Running);
        settle().await;
        assert_eq!(sink.last(), Some(None));

        // A handler stuck on events for longer than `stalled_after`.
        stats.progress.busy();
        tokio::time::advance(Duration::from_secs(31)).await;
        settle().await;
        let detail = sink.last().flatten().expect("degraded");
        assert!(detail.contains("no progress for at least 30 s"), "{detail}");
        stats.progress.idle();
        tokio::time::advance(Duration::from_secs(5)).await;
        settle().await;
        assert_eq!(sink.last(), Some(None));

        // A checkpoint 400 s behind in a 600 s window (67 % > 50 %), then a newer one.
        stats.checkpoint_stored(Some(ts(1200)));
        tokio::time::advance(Duration::from_secs(5)).await;
        settle().await;
        let detail = sink.last().flatten().expect("degraded");
        assert!(
            detail.contains("at least 50 % of the oplog window"),
            "{detail}"
        );
        stats.checkpoint_stored(Some(ts(1500)));
        tokio::time::advance(Duration::from_secs(5)).await;
        settle().await;
        assert_eq!(sink.last(), Some(None));
        task.abort();
    }
}
