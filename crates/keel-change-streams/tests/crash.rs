//! Crash safety: a consumer process SIGKILLed at random points, many times, never loses an
//! event after its committed checkpoint (the test binary re-runs itself as the child).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use keel_change_streams::{ChangeConsumer, CommitPolicy, FileCheckpointStore};
use mongodb::bson::Document;
use support::*;

const CHILD_ENV: &str = "KEEL_CS_CRASH_CHILD";
const TEST_NAME: &str = "a_sigkilled_consumer_never_loses_an_event_after_its_checkpoint";
const RUNS: usize = 20;
const EVENTS_PER_RUN: i32 = 25;

/// The child: consume `app.orders` with a file checkpoint, appending each handled id to the
/// log *before* the handler returns `Ok` (so the log is a superset of what was acknowledged).
async fn child(uri: String, dir: PathBuf) {
    let keel = keel(&uri).await;
    let log = dir.join("handled.log");
    let consumer = ChangeConsumer::<Document>::builder(keel, "crash")
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(50))
        .commit_policy(CommitPolicy::EveryN(3))
        .store(FileCheckpointStore::new(dir.join("checkpoints")))
        .start_from(keel_change_streams::StartFrom::At(
            mongodb::bson::Timestamp {
                time: 0,
                increment: 0,
            },
        ))
        .handler(move |event| {
            let log = log.clone();
            async move {
                let id = doc_id(&event).unwrap();
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                writeln!(file, "{id}").unwrap();
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap();
    let _ = consumer.wait().await;
    std::process::exit(3);
}

fn logged(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("handled.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_consumer_never_loses_an_event_after_its_checkpoint() {
    if let (Ok(uri), Ok(dir)) = (std::env::var(CHILD_ENV), std::env::var("KEEL_CS_CRASH_DIR")) {
        child(uri, dir.into()).await;
        return;
    }
    let rs = replica_set(100_000).await;
    let keel = keel(&rs.uri()).await;
    let dir = std::env::temp_dir().join(format!("keel-cs-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let spawn = || {
        tokio::process::Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, rs.uri())
            .env("KEEL_TEST_DB", db())
            .env("KEEL_CS_CRASH_DIR", &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut written = 0;
    for _ in 0..RUNS {
        let mut child = spawn();
        let orders = keel.collection::<Document>(&db(), "orders");
        for i in written..written + EVENTS_PER_RUN {
            orders
                .insert_one(mongodb::bson::doc! {"_id": i})
                .await
                .unwrap();
        }
        written += EVENTS_PER_RUN;
        // Kill at a random point: before, during or after handling and committing.
        let delay = Duration::from_millis(rand::random::<u64>() % 400);
        tokio::time::sleep(delay).await;
        child.kill().await.unwrap(); // SIGKILL
        // The checkpoint file is never torn.
        let store = FileCheckpointStore::new(dir.join("checkpoints"));
        keel_change_streams::CheckpointStore::load(&store, "crash")
            .await
            .expect("the checkpoint file survives every kill");
    }
    // A last run, not killed until every event was handled at least once.
    let mut child = spawn();
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if all_seen(&logged(&dir), written) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    child.kill().await.unwrap();
    let ids = logged(&dir);
    let missing: Vec<_> = (0..written).filter(|i| !ids.contains(i)).collect();
    assert!(
        waited.is_ok() && missing.is_empty(),
        "missing events after {RUNS} kills: {missing:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
