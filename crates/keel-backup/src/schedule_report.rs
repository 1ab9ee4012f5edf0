//! What a [`Schedule`](crate::Schedule) reports after each run, besides its
//! [`ScheduleStats`](crate::ScheduleStats): the `keel_backup_*` metrics, labelled by the
//! schedule's name, and (feature `health`) a keel-health component `backup:<name>`, degraded
//! with a sentence when a run fails and healthy again after the next success, so a failed
//! backup reaches the health report, the dashboard and the alert sinks.

use std::time::Duration;

use crate::{BackupError, Manifest};

/// Gauge: when the last successful scheduled backup finished, in seconds since the Unix epoch.
pub const LAST_SUCCESS: &str = "keel_backup_last_success_timestamp_seconds";
/// Gauge: how long the last successful scheduled backup took, in seconds.
pub const LAST_DURATION: &str = "keel_backup_last_duration_seconds";
/// Gauge: the documents' bytes (uncompressed BSON) in the last successful scheduled backup.
pub const LAST_BYTES: &str = "keel_backup_last_bytes";
/// Gauge: the documents in the last successful scheduled backup.
pub const LAST_DOCUMENTS: &str = "keel_backup_last_documents";
/// Gauge: when a restore drill of a scheduled backup last passed, in seconds since the epoch.
pub const LAST_VERIFIED: &str = "keel_backup_last_verified_timestamp_seconds";
/// Counter: scheduled backups that failed.
pub const FAILURES: &str = "keel_backup_failures_total";

/// The metric handles (keys built once) and the health component of one running schedule.
pub(crate) struct RunReporter {
    last_success: metrics::Gauge,
    last_duration: metrics::Gauge,
    last_bytes: metrics::Gauge,
    last_documents: metrics::Gauge,
    last_verified: metrics::Gauge,
    failures: metrics::Counter,
    failed_in_a_row: u64,
    #[cfg(feature = "health")]
    component: Option<keel_health::ComponentReporter>,
}

impl RunReporter {
    /// Handles for the schedule `name`; with a health handle, its component is registered
    /// (healthy) until the reporter is dropped, when the schedule ends.
    pub(crate) fn new(
        name: &str,
        #[cfg(feature = "health")] health: Option<&keel_health::HealthHandle>,
    ) -> Self {
        let label = || [("schedule", name.to_owned())];
        Self {
            last_success: metrics::gauge!(LAST_SUCCESS, &label()),
            last_duration: metrics::gauge!(LAST_DURATION, &label()),
            last_bytes: metrics::gauge!(LAST_BYTES, &label()),
            last_documents: metrics::gauge!(LAST_DOCUMENTS, &label()),
            last_verified: metrics::gauge!(LAST_VERIFIED, &label()),
            failures: metrics::counter!(FAILURES, &label()),
            failed_in_a_row: 0,
            #[cfg(feature = "health")]
            component: health.map(|health| health.component(format!("backup:{name}"))),
        }
    }

    /// A run produced `manifest` (re-read from disk after the job, so a drill the job ran is
    /// in it) in `took`.
    pub(crate) fn succeeded(&mut self, manifest: &Manifest, took: Duration) {
        self.failed_in_a_row = 0;
        if let Some(seconds) = epoch_seconds(&manifest.finished_at) {
            self.last_success.set(seconds);
        }
        self.last_duration.set(took.as_secs_f64());
        let bytes: u64 = manifest.namespaces.iter().map(|n| n.bytes).sum();
        self.last_bytes.set(bytes as f64);
        self.last_documents.set(manifest.documents() as f64);
        if let Some(seconds) = manifest.last_good_drill.as_deref().and_then(epoch_seconds) {
            self.last_verified.set(seconds);
        }
        #[cfg(feature = "health")]
        if let Some(component) = &self.component {
            component.healthy();
        }
    }

    /// A run failed with `error` at `at` (RFC 3339); `last_success` is the newest good run's end.
    pub(crate) fn failed(&mut self, error: &BackupError, at: &str, last_success: Option<&str>) {
        self.failures.increment(1);
        self.failed_in_a_row += 1;
        let sentence = failure_sentence(self.failed_in_a_row, at, error, last_success);
        tracing::warn!(detail = %sentence, "backup schedule degraded");
        #[cfg(feature = "health")]
        if let Some(component) = &self.component {
            component.degraded(sentence);
        }
    }
}

/// The health component's sentence: what failed, when, how often, and how old the newest good
/// backup is. It names the kind of failure, never the server's message (which may quote data).
pub(crate) fn failure_sentence(
    in_a_row: u64,
    at: &str,
    error: &BackupError,
    last_success: Option<&str>,
) -> String {
    let runs = if in_a_row == 1 {
        "the last scheduled backup".to_owned()
    } else {
        format!("{in_a_row} scheduled backups in a row")
    };
    let newest = match last_success {
        Some(time) => format!("the newest good backup finished at {time}"),
        None => "no scheduled backup has succeeded yet".to_owned(),
    };
    format!("{runs} failed (at {at}): {}; {newest}", error.kind())
}

/// RFC 3339 to seconds since the Unix epoch.
fn epoch_seconds(rfc3339: &str) -> Option<f64> {
    let time = mongodb::bson::DateTime::parse_rfc3339_str(rfc3339).ok()?;
    Some(time.timestamp_millis() as f64 / 1000.0)
}
