//! The offline indicator (`SyncStatus` on a watch), the `keel_sync_*` metrics, and a health
//! check that reports a queue not drained in time as degraded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keel_health::HealthStatus;
use tokio::sync::watch;

/// Whether the client can sync now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connectivity {
    /// The database is unreachable: writes queue locally.
    Offline,
    /// Connected, with nothing to upload.
    Online,
    /// Connected and uploading or downloading.
    Syncing,
}

impl Connectivity {
    /// A short stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Connectivity::Offline => "offline",
            Connectivity::Online => "online",
            Connectivity::Syncing => "syncing",
        }
    }
}

/// What an app's status line shows.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncStatus {
    /// Offline, online or syncing.
    pub connectivity: Connectivity,
    /// Operations waiting for upload.
    pub pending: usize,
    /// When the oldest waiting operation was written.
    pub oldest_pending_since: Option<SystemTime>,
    /// The last time the queue was uploaded and server changes downloaded without error.
    pub last_sync: Option<SystemTime>,
    /// Operations in quarantine.
    pub quarantined: usize,
    /// Conflicts in the log.
    pub conflicts: u64,
}

impl SyncStatus {
    /// How long the oldest waiting operation has waited.
    pub fn oldest_pending_age(&self) -> Option<Duration> {
        self.oldest_pending_since
            .map(|since| SystemTime::now().duration_since(since).unwrap_or_default())
    }
}

impl std::fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} | pending {}",
            self.connectivity.as_str(),
            self.pending
        )?;
        if let Some(age) = self.oldest_pending_age() {
            write!(f, " (oldest {:.1}s)", age.as_secs_f64())?;
        }
        write!(
            f,
            " | quarantined {} | conflicts {}",
            self.quarantined, self.conflicts
        )
    }
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The gauges of one client (label `app`, so clients of one process keep their own series).
pub(crate) fn record_metrics(app: &str, status: &SyncStatus) {
    let app = app.to_owned();
    #[allow(clippy::cast_precision_loss)]
    {
        metrics::gauge!("keel_sync_pending_operations", "app" => app.clone())
            .set(status.pending as f64);
        metrics::gauge!("keel_sync_quarantined_operations", "app" => app.clone())
            .set(status.quarantined as f64);
        metrics::gauge!("keel_sync_conflicts", "app" => app.clone()).set(status.conflicts as f64);
    }
    metrics::gauge!("keel_sync_oldest_pending_seconds", "app" => app.clone()).set(
        status
            .oldest_pending_age()
            .map_or(0.0, |age| age.as_secs_f64()),
    );
    metrics::gauge!("keel_sync_online", "app" => app).set(match status.connectivity {
        Connectivity::Offline => 0.0,
        Connectivity::Online | Connectivity::Syncing => 1.0,
    });
}

/// A health check over a client's status: `Degraded` when an operation has waited for upload
/// longer than the limit (the queue has not drained), or operations are quarantined.
///
/// ```no_run
/// # fn run(client: keel_sync::SyncClient) {
/// use std::time::Duration;
/// let check = keel_sync::SyncHealthCheck::new(client.status(), Duration::from_secs(300));
/// let (status, reason) = check.check();
/// println!("{status}: {}", reason.unwrap_or_default());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SyncHealthCheck {
    status: watch::Receiver<SyncStatus>,
    max_undrained: Duration,
}

impl SyncHealthCheck {
    /// A check over `status` with the longest acceptable wait of an operation.
    pub fn new(status: watch::Receiver<SyncStatus>, max_undrained: Duration) -> Self {
        Self {
            status,
            max_undrained,
        }
    }

    /// The health now, with the reason when it is not healthy.
    pub fn check(&self) -> (HealthStatus, Option<String>) {
        let status = self.status.borrow().clone();
        if let Some(age) = status.oldest_pending_age()
            && age > self.max_undrained
        {
            return (
                HealthStatus::Degraded,
                Some(format!(
                    "{} sync operations wait for upload, the oldest for {:.0}s (limit {:.0}s)",
                    status.pending,
                    age.as_secs_f64(),
                    self.max_undrained.as_secs_f64()
                )),
            );
        }
        if status.quarantined > 0 {
            return (
                HealthStatus::Degraded,
                Some(format!(
                    "{} sync operations were refused by the server and are quarantined",
                    status.quarantined
                )),
            );
        }
        (HealthStatus::Healthy, None)
    }
}
