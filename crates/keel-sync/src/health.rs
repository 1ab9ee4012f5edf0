//! The sync client as a keel-health component (`sync:{app}`): degraded while the queue has not
//! drained for longer than the configured time, or operations sit in quarantine; healthy
//! again once neither holds. One task per client follows its status watch and a timer.

use std::time::Duration;

use keel_health::ComponentReporter;
use tokio::{sync::watch, time::Instant};

use crate::SyncStatus;

/// Where the task reports: keel-health's reporter, or a test's.
pub(crate) trait Report: Send + 'static {
    fn healthy(&self);
    fn degraded(&self, detail: String);
}

impl Report for ComponentReporter {
    fn healthy(&self) {
        ComponentReporter::healthy(self);
    }
    fn degraded(&self, detail: String) {
        ComponentReporter::degraded(self, detail);
    }
}

/// The component's verdict on a status, `since` being when the queue last stopped being empty.
fn verdict(
    status: &SyncStatus,
    since: Option<Instant>,
    now: Instant,
    limit: Duration,
) -> Option<String> {
    if let Some(since) = since {
        let waited = now.saturating_duration_since(since);
        if waited > limit {
            return Some(format!(
                "the sync queue has not drained for {} (limit {}): {} operations wait for \
                 upload and the client is {}",
                human(waited),
                human(limit),
                status.pending,
                status.connectivity.as_str()
            ));
        }
    }
    (status.quarantined > 0).then(|| {
        format!(
            "{} sync operations were refused by the server and are quarantined; retry or \
             discard them",
            status.quarantined
        )
    })
}

fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 120 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// Follows `status` until the client is gone (the watch closes), reporting to `reporter`. A
/// queue found non-empty at start counts from its oldest operation's age.
pub(crate) async fn run(
    mut status: watch::Receiver<SyncStatus>,
    reporter: impl Report,
    limit: Duration,
) {
    let mut since: Option<Instant> = {
        let now = status.borrow_and_update().clone();
        (now.pending > 0).then(|| {
            let age = now.oldest_pending_age().unwrap_or_default();
            Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
        })
    };
    let mut reported: Option<Option<String>> = None;
    loop {
        let current = status.borrow_and_update().clone();
        match (current.pending > 0, since) {
            (true, None) => since = Some(Instant::now()),
            (false, Some(_)) => since = None,
            _ => {}
        }
        let verdict = verdict(&current, since, Instant::now(), limit);
        if reported.as_ref() != Some(&verdict) {
            match &verdict {
                Some(detail) => reporter.degraded(detail.clone()),
                None => reporter.healthy(),
            }
            reported = Some(verdict.clone());
        }
        // While the queue waits and the limit is not passed yet, look again when it will be.
        let deadline = since
            .filter(|_| verdict.is_none() || current.quarantined > 0)
            .map(|s| s + limit + Duration::from_millis(1))
            .filter(|d| *d > Instant::now());
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return; },
            () = sleep_until(deadline) => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::Connectivity;

    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<Option<String>>>>);

    impl Report for Recorded {
        fn healthy(&self) {
            self.0.lock().unwrap().push(None);
        }
        fn degraded(&self, detail: String) {
            self.0.lock().unwrap().push(Some(detail));
        }
    }

    impl Recorded {
        fn last(&self) -> Option<Option<String>> {
            self.0.lock().unwrap().last().cloned()
        }
    }

    fn status(pending: usize, quarantined: usize) -> SyncStatus {
        SyncStatus {
            connectivity: Connectivity::Offline,
            pending,
            oldest_pending_since: None,
            last_sync: None,
            quarantined,
            conflicts: 0,
        }
    }

    /// Lets the task run what the last change or time step woke (paused time does not move).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_that_has_not_drained_for_the_limit_is_degraded_until_it_drains() {
        let limit = Duration::from_secs(300);
        let (tx, rx) = watch::channel(status(0, 0));
        let recorded = Recorded::default();
        let task = tokio::spawn(run(rx, recorded.clone(), limit));
        settle().await;
        assert_eq!(recorded.last(), Some(None));

        tx.send(status(3, 0)).unwrap();
        settle().await;
        tokio::time::advance(Duration::from_secs(200)).await;
        // Writes and uploads that leave the queue non-empty do not restart the clock.
        tx.send(status(5, 0)).unwrap();
        settle().await;
        tokio::time::advance(Duration::from_secs(99)).await;
        settle().await;
        assert_eq!(recorded.last(), Some(None), "299 s: within the limit");

        tokio::time::advance(Duration::from_secs(2)).await;
        settle().await;
        let detail = recorded.last().unwrap().unwrap();
        assert!(detail.contains("has not drained for 5 min"), "{detail}");
        assert!(detail.contains("5 operations"), "{detail}");

        tx.send(status(0, 0)).unwrap();
        settle().await;
        assert_eq!(recorded.last(), Some(None), "drained: healthy again");

        // A new wait starts from zero.
        tx.send(status(1, 0)).unwrap();
        settle().await;
        tokio::time::advance(Duration::from_secs(250)).await;
        settle().await;
        assert_eq!(recorded.last(), Some(None));
        drop(tx);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn quarantined_operations_are_degraded_at_once() {
        let (tx, rx) = watch::channel(status(0, 2));
        let recorded = Recorded::default();
        let task = tokio::spawn(run(rx, recorded.clone(), Duration::from_secs(60)));
        settle().await;
        let detail = recorded.last().unwrap().unwrap();
        assert!(
            detail.contains("2 sync operations were refused"),
            "{detail}"
        );
        tx.send(status(0, 0)).unwrap();
        settle().await;
        assert_eq!(recorded.last(), Some(None));
        // Reported once per change, not on every status.
        let reports = recorded.0.lock().unwrap().len();
        tx.send(status(0, 0)).unwrap();
        settle().await;
        assert_eq!(recorded.0.lock().unwrap().len(), reports);
        drop(tx);
        task.await.unwrap();
    }
}
