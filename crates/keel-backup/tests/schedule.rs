//! The scheduler with tokio's paused time: runs at every interval, never two at once (a run
//! longer than the interval makes the due times inside it skipped, not queued), failures
//! reported and survived, retention applied after each run without pruning the newest good
//! backup or anything damaged, and one scheduler per directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_backup::{
    BackupError, Manifest, PRELUDE_FILE, Retention, SCHEDULE_LOCK, Schedule, list_backups,
};
use sha2::Digest as _;

const HOUR: Duration = Duration::from_secs(3600);

fn root(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "keel-backup-schedule-{}-{n}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A minimal backup that `verify` accepts: a prelude and a complete manifest, no namespaces.
fn fake_backup(dir: &Path, finished_at: &str) -> Manifest {
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
        namespaces: vec![],
        changes: None,
        ddl_captured: false,
        complete: true,
        last_drill: None,
        last_good_drill: None,
    };
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    manifest
}

/// The synthetic finish time of run `i`: every 6 h from 2026-01-01.
fn finished_at(i: u32) -> String {
    let ms = mongodb::bson::DateTime::parse_rfc3339_str("2026-01-01T00:00:00Z")
        .unwrap()
        .timestamp_millis()
        + i64::from(i) * 6 * 3_600_000;
    mongodb::bson::DateTime::from_millis(ms)
        .try_to_rfc3339_string()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn runs_every_interval_never_overlap_and_skip_due_times_inside_a_long_run() {
    let root = root("interval");
    let origin = tokio::time::Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU32::new(0));
    let job = {
        let (starts, running, count) = (starts.clone(), running.clone(), count.clone());
        move |dir: PathBuf| {
            let (starts, running, count) = (starts.clone(), running.clone(), count.clone());
            async move {
                assert!(!running.swap(true, Ordering::SeqCst), "two runs at once");
                let i = count.fetch_add(1, Ordering::SeqCst);
                starts.lock().unwrap().push(origin.elapsed());
                // The third run takes 15 h: the due times at 18 h and 24 h fall inside it.
                let took = if i == 2 {
                    15 * HOUR
                } else {
                    Duration::from_secs(60)
                };
                tokio::time::sleep(took).await;
                let manifest = fake_backup(&dir, &finished_at(i));
                running.store(false, Ordering::SeqCst);
                Ok::<_, BackupError>(manifest)
            }
        }
    };
    let stats = Schedule::new(&root, 6 * HOUR)
        .retention(Retention {
            keep_last: 2,
            ..Default::default()
        })
        .runs(5)
        .run(job, |_| {}, std::future::pending())
        .await
        .unwrap();
    let starts = starts.lock().unwrap().clone();
    assert_eq!(
        starts,
        [0, 6, 12, 30, 36].map(|h| h * HOUR),
        "runs at 0, 6 and 12 h, then at the first due time after the long run"
    );
    assert_eq!(stats.succeeded, 5);
    assert_eq!(stats.skipped, 2);
    assert_eq!(stats.pruned.len(), 3);
    assert_eq!(stats.last_documents, 0);
    assert_eq!(stats.last_success.as_deref(), Some(finished_at(4).as_str()));
    assert_eq!(list_backups(&root).len(), 2);
    assert!(!root.join(SCHEDULE_LOCK).exists(), "the lock is released");
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(start_paused = true)]
async fn failures_alert_and_the_newest_good_and_damaged_backups_are_kept() {
    let root = root("failures");
    let count = Arc::new(AtomicU32::new(0));
    let job = {
        let count = count.clone();
        move |dir: PathBuf| {
            let count = count.clone();
            async move {
                let i = count.fetch_add(1, Ordering::SeqCst);
                match i {
                    // Run 1 fails: nothing is written.
                    1 => Err(BackupError::NoDestination),
                    // Run 3 writes a backup that is then damaged (its prelude changed).
                    3 => {
                        let m = fake_backup(&dir, &finished_at(i));
                        std::fs::write(dir.join(PRELUDE_FILE), b"{}").unwrap();
                        Ok(m)
                    }
                    _ => Ok(fake_backup(&dir, &finished_at(i))),
                }
            }
        }
    };
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let stats = Schedule::new(&root, HOUR)
        .runs(4)
        .run(
            job,
            {
                let alerts = alerts.clone();
                move |e: &BackupError| alerts.lock().unwrap().push(e.to_string())
            },
            std::future::pending(),
        )
        .await
        .unwrap();
    assert_eq!((stats.succeeded, stats.failed), (3, 1));
    assert_eq!(alerts.lock().unwrap().len(), 1);
    assert!(stats.last_error.unwrap().contains("no backup directory"));
    // Left: run 2 (the newest good one, kept although run 3 is newer) and the damaged run 3.
    let mut left: Vec<(String, bool)> = list_backups(&root)
        .into_iter()
        .map(|b| {
            (
                keel_backup::Manifest::read(&b.dir).unwrap().finished_at,
                b.good,
            )
        })
        .collect();
    left.sort();
    assert_eq!(left, [(finished_at(2), true), (finished_at(3), false)]);
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(start_paused = true)]
async fn one_scheduler_per_directory_and_a_dead_holder_is_taken_over() {
    let root = root("lock");
    std::fs::create_dir_all(&root).unwrap();
    // A live holder: this very process.
    std::fs::write(root.join(SCHEDULE_LOCK), std::process::id().to_string()).unwrap();
    let never = |_: PathBuf| async { Err::<Manifest, _>(BackupError::NoDestination) };
    let error = Schedule::new(&root, HOUR)
        .runs(1)
        .run(never, |_| {}, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackupError::ScheduleLocked { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("another backup scheduler"));
    // A holder that no longer runs (no such process).
    std::fs::write(root.join(SCHEDULE_LOCK), "4000000000").unwrap();
    let stats = Schedule::new(&root, HOUR)
        .runs(1)
        .run(never, |_| {}, std::future::pending())
        .await
        .unwrap();
    assert_eq!(stats.failed, 1);
    // Shutdown stops a schedule between runs.
    let stats = Schedule::new(&root, HOUR)
        .run(never, |_| {}, tokio::time::sleep(HOUR + HOUR / 2))
        .await
        .unwrap();
    assert_eq!(stats.failed, 2, "runs at 0 and 1 h, stopped at 1.5 h");
    let _ = std::fs::remove_dir_all(&root);
}

/// 2026-12-02T03:50:00Z, a time that is not on a cron boundary.
fn wall(rfc3339: &str) -> std::time::SystemTime {
    let ms = mongodb::bson::DateTime::parse_rfc3339_str(rfc3339)
        .unwrap()
        .timestamp_millis();
    std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_cron_schedule_runs_at_each_match_in_utc_and_skips_matches_inside_a_long_run() {
    let root = root("cron");
    let origin = tokio::time::Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicU32::new(0));
    let job = {
        let (starts, count) = (starts.clone(), count.clone());
        move |dir: PathBuf| {
            let (starts, count) = (starts.clone(), count.clone());
            async move {
                let i = count.fetch_add(1, Ordering::SeqCst);
                starts.lock().unwrap().push(origin.elapsed());
                // The second run (at 12:00) takes 13 h: the matches at 18:00 and 00:00 fall
                // inside it; the next run is at 06:00.
                let took = if i == 1 {
                    13 * HOUR
                } else {
                    Duration::from_secs(60)
                };
                tokio::time::sleep(took).await;
                Ok::<_, BackupError>(fake_backup(&dir, &finished_at(i)))
            }
        }
    };
    let stats = Schedule::cron(&root, "0 */6 * * *")
        .unwrap()
        .starting_at(wall("2026-12-02T03:50:00Z"))
        .retention(Retention {
            keep_last: 5,
            ..Default::default()
        })
        .runs(4)
        .run(job, |_| {}, std::future::pending())
        .await
        .unwrap();
    let ten_minutes = Duration::from_secs(600);
    let starts = starts.lock().unwrap().clone();
    assert_eq!(
        starts,
        [
            2 * HOUR + ten_minutes,  // 06:00
            8 * HOUR + ten_minutes,  // 12:00 (takes until 01:00)
            26 * HOUR + ten_minutes, // 06:00 the next day
            32 * HOUR + ten_minutes, // 12:00
        ],
        "runs at 06:00 and 12:00 UTC, then at the first match after the long run"
    );
    assert_eq!(stats.succeeded, 4);
    assert_eq!(stats.skipped, 2, "18:00 and 00:00 fell inside the long run");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_bad_cron_expression_is_refused_with_a_sentence() {
    let error = Schedule::cron(root("bad-cron"), "0 */6 * *").unwrap_err();
    assert!(matches!(error, BackupError::BadCron { .. }));
    let said = error.to_string();
    assert!(
        said.contains("\"0 */6 * *\"") && said.contains("five fields"),
        "{said}"
    );
}
