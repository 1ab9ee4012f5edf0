//! What a schedule reports after each run: the `keel_backup_*` metrics read back from a
//! debugging recorder, and (feature `health`) the keel-health component `backup:<name>`,
//! degraded with a sentence and alerted on failure, healthy again after the next success.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use keel_backup::schedule_report::{
    FAILURES, LAST_BYTES, LAST_DOCUMENTS, LAST_DURATION, LAST_SUCCESS, LAST_VERIFIED,
};
use keel_backup::{BackupError, Manifest, NamespaceEntry, PRELUDE_FILE, Schedule};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sha2::Digest as _;

const HOUR: Duration = Duration::from_secs(3600);

fn root(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "keel-backup-report-{}-{n}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A backup's files as far as the scheduler reads them: a prelude and a complete manifest of
/// one namespace of `documents` documents and `bytes` bytes, drilled at `drilled`.
fn fake_backup(dir: &Path, finished_at: &str, documents: u64, drilled: Option<&str>) -> Manifest {
    std::fs::create_dir_all(dir).unwrap();
    let prelude = br#"{"ServerVersion":"7.0.0","ToolVersion":"test"}"#;
    std::fs::write(dir.join(PRELUDE_FILE), prelude).unwrap();
    let manifest = Manifest {
        format: 1,
        tool_version: "test".into(),
        server_version: "7.0.0".into(),
        started_at: finished_at.into(),
        finished_at: finished_at.into(),
        cluster_time: None,
        gzip: false,
        prelude_sha256: hex::encode(sha2::Sha256::digest(prelude)),
        namespaces: vec![NamespaceEntry {
            db: "app".into(),
            collection: "orders".into(),
            collection_type: "collection".into(),
            bson_file: Some("app/orders.bson".into()),
            metadata_file: "app/orders.metadata.json".into(),
            count: documents,
            bytes: documents * 100,
            bson_sha256: None,
            metadata_sha256: String::new(),
            documents_digest: String::new(),
            indexes_digest: String::new(),
        }],
        changes: None,
        ddl_captured: false,
        complete: true,
        last_drill: None,
        last_good_drill: None,
    };
    // What the job returns is the backup's manifest; the drill afterwards is only in the file.
    let mut on_disk = manifest.clone();
    on_disk.last_good_drill = drilled.map(str::to_owned);
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string(&on_disk).unwrap(),
    )
    .unwrap();
    manifest
}

fn read(snapshotter: &Snapshotter) -> HashMap<String, (Vec<(String, String)>, f64)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let value = match value {
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Counter(c) => c as f64,
                DebugValue::Histogram(_) => f64::NAN,
            };
            (key.key().name().to_owned(), (labels, value))
        })
        .collect()
}

#[test]
fn the_schedule_exports_success_time_duration_bytes_documents_verified_time_and_failures() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let root = root("metrics");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let count = AtomicU32::new(0);
    let stats = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let job = |dir: PathBuf| {
                let i = count.fetch_add(1, Ordering::SeqCst);
                async move {
                    // Run 0 fails; run 1 takes 90 s and writes 42 documents, drilled; run 2
                    // fails again.
                    if i != 1 {
                        return Err(BackupError::ChangeCapture("the stream closed".into()));
                    }
                    tokio::time::sleep(Duration::from_secs(90)).await;
                    Ok(fake_backup(
                        &dir,
                        "2026-12-02T06:01:30Z",
                        42,
                        Some("2026-12-02T06:02:00Z"),
                    ))
                }
            };
            Schedule::new(&root, HOUR)
                .name("nightly")
                .runs(3)
                .run(job, |_| {}, std::future::pending())
                .await
                .unwrap()
        })
    });
    assert_eq!((stats.succeeded, stats.failed), (1, 2));
    let metrics = read(&snapshotter);
    let label = vec![("schedule".to_owned(), "nightly".to_owned())];
    let value = |name: &str| {
        let (labels, value) = metrics
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(labels, &label, "{name}");
        *value
    };
    // 2026-12-02T06:01:30Z and 06:02:00Z in seconds since the epoch.
    assert_eq!(value(LAST_SUCCESS), 1_796_191_290.0);
    assert_eq!(value(LAST_VERIFIED), 1_796_191_320.0);
    assert_eq!(value(LAST_DURATION), 90.0);
    assert_eq!(value(LAST_DOCUMENTS), 42.0);
    assert_eq!(value(LAST_BYTES), 4200.0);
    assert_eq!(value(FAILURES), 2.0);
    let _ = std::fs::remove_dir_all(&root);
}

#[cfg(feature = "health")]
mod health {
    use super::*;
    use futures_util::future::BoxFuture;
    use keel_health::{
        AlertEvent, AlertKind, ChannelSink, HealthConfig, HealthHandle, HealthMonitor,
        HealthStatus, HealthTarget, Transition,
    };
    use keel_pool_core::{ConnectionState, PoolStats, ResetRefused};
    use tokio::sync::{mpsc, watch};

    /// A connection that is always up, so only the component can degrade the report.
    struct Up(watch::Sender<ConnectionState>);

    impl HealthTarget for Up {
        fn ping(&self) -> BoxFuture<'static, Result<(), keel_core::Error>> {
            Box::pin(async { Ok(()) })
        }
        fn connection(&self) -> watch::Receiver<ConnectionState> {
            self.0.subscribe()
        }
        fn pool_stats(&self) -> PoolStats {
            PoolStats::default()
        }
        fn reset(&self) -> Result<(), ResetRefused> {
            Ok(())
        }
    }

    async fn next_alert(alerts: &mut mpsc::Receiver<AlertEvent>) -> AlertEvent {
        tokio::time::timeout(Duration::from_secs(60), alerts.recv())
            .await
            .expect("no alert came")
            .expect("alert channel closed")
    }

    /// Awaits the report's status (the monitor publishes on its own cadence).
    async fn until_status(health: &HealthHandle, status: HealthStatus) {
        let mut reports = health.subscribe();
        tokio::time::timeout(
            Duration::from_secs(60),
            reports.wait_for(|r| r.status == status),
        )
        .await
        .expect("the report never reached the status")
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_run_degrades_the_backup_component_and_alerts_until_the_next_success() {
        let (state, _) = watch::channel(ConnectionState::Connected);
        let (sink, alerts) = ChannelSink::new(16);
        let mut config = HealthConfig::default();
        config.interval = Duration::from_secs(1);
        config.jitter = 0.0;
        let monitor = HealthMonitor::builder(Up(state), config)
            .sink(sink)
            .spawn()
            .unwrap();
        let health = monitor.handle();
        until_status(&health, HealthStatus::Healthy).await;
        let root = root("health");
        let count = AtomicU32::new(0);
        let alerts = tokio::sync::Mutex::new(alerts);
        let job = |dir: PathBuf| {
            let i = count.fetch_add(1, Ordering::SeqCst);
            let (health, alerts) = (&health, &alerts);
            async move {
                let components = health.components();
                assert_eq!(components.len(), 1);
                assert_eq!(components[0].name, "backup:nightly");
                let detail = components[0].detail.clone();
                match i {
                    0 => assert_eq!(detail, None, "a new schedule is healthy"),
                    1 => {
                        let detail = detail.expect("degraded after the failure");
                        assert!(
                            detail.starts_with("the last scheduled backup failed (at ")
                                && detail.contains(
                                    "the database stayed unreachable past the outage deadline; no scheduled backup has succeeded yet"
                                ),
                            "{detail}"
                        );
                        assert!(!detail.contains("secret-host"), "{detail}");
                        until_status(health, HealthStatus::Degraded).await;
                        let raised = next_alert(&mut *alerts.lock().await).await;
                        assert_eq!(raised.kind, AlertKind::ComponentDegraded);
                        assert_eq!(raised.transition, Transition::Raised);
                        assert_eq!(raised.component.as_deref(), Some("backup:nightly"));
                    }
                    2 => {
                        let detail = detail.expect("still degraded");
                        assert!(
                            detail.starts_with("2 scheduled backups in a row failed"),
                            "{detail}"
                        );
                    }
                    _ => {
                        assert_eq!(detail, None, "healthy after the success");
                        until_status(health, HealthStatus::Healthy).await;
                        let cleared = next_alert(&mut *alerts.lock().await).await;
                        assert_eq!(cleared.kind, AlertKind::ComponentDegraded);
                        assert_eq!(cleared.transition, Transition::Cleared);
                    }
                }
                if i == 0 || i == 1 {
                    return Err(BackupError::OutageDeadline {
                        namespace: "app.orders".into(),
                        seconds: 30,
                        message: "connection to secret-host:27017 reset".into(),
                    });
                }
                Ok(fake_backup(&dir, "2026-12-02T06:00:00Z", 1, None))
            }
        };
        let stats = Schedule::new(&root, HOUR)
            .name("nightly")
            .report_health(&health)
            .runs(4)
            .run(job, |_| {}, std::future::pending())
            .await
            .unwrap();
        assert_eq!((stats.succeeded, stats.failed), (2, 2));
        assert!(
            health.components().is_empty(),
            "the component goes with the schedule"
        );
        monitor.shutdown().await;
        let _ = std::fs::remove_dir_all(&root);
    }
}
