//! Resumable restores, proved with SIGKILL: a child process (this test binary again) restores a
//! backup and prints a line after each batch; it is killed at a random batch (plus a random
//! delay), then the restore is run again to the end. Every run must end with exactly the
//! backup's documents (no duplicate, none missing: the restore's own digest comparison and an
//! explicit count and `_id` check), continuing from the killed run's checkpoint.
//!
//! `KEEL_BACKUP_CRASH_TRIALS` sets the number of kills (default 20).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::TryStreamExt as _;
use keel_backup::{Backup, Progress, Restore};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};
use rand::Rng as _;

const CHILD_VAR: &str = "KEEL_BACKUP_CRASH_CHILD";
const DOCS: i32 = 3000;
const BATCH: usize = 50;

async fn keel(uri: &str) -> Keel {
    Keel::builder(KeelConfig::development(uri).unwrap())
        .build()
        .await
        .unwrap()
}

fn restore(dir: &Path, db: &str, target: &str) -> Restore {
    Restore::from(dir)
        .drop(true)
        .rename(db, target)
        .batch_size(BATCH)
}

/// The child: `URI|DIR|DB|TARGET` in the variable; restores and prints `batch` per batch.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_VAR) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [uri, dir, db, target] = parts[..] else {
        panic!("bad child spec {spec}");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let keel = keel(uri).await;
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let printer = tokio::spawn(async move {
            let mut out = std::io::stdout();
            while let Some(event) = rx.recv().await {
                if let Progress::Namespace { .. } = event {
                    writeln!(out, "\nbatch").unwrap();
                    out.flush().unwrap();
                }
            }
        });
        restore(Path::new(dir), db, target)
            .progress(tx)
            .into(&keel)
            .await
            .unwrap();
        printer.await.unwrap();
        println!("\ndone");
    });
}

/// Runs the child until its `kill_at`-th batch line (plus up to 3 ms), SIGKILLs it, and says
/// whether it had finished by then.
fn one_trial(spec: &str, kill_at: usize, rng: &mut impl rand::Rng) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut batches = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "batch" => {
                    batches += 1;
                    if batches == kill_at {
                        let _ = tx.send(false);
                    }
                }
                "done" => {
                    let _ = tx.send(true);
                }
                _ => {}
            }
        }
    });
    let finished = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the child reports within 60 s");
    std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    finished
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_anywhere_finishes_on_rerun_without_duplicates() {
    if std::env::var(CHILD_VAR).is_ok() {
        return;
    }
    let trials: usize = std::env::var("KEEL_BACKUP_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (_server, uri) = match std::env::var("KEEL_TEST_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let server = TestServer::start().await.unwrap();
            let uri = server.uri();
            (Some(server), uri)
        }
    };
    let db = format!("kb_crash_{}", std::process::id());
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let database = client.database(&db);
    let _ = database.drop().await;
    database
        .collection::<Document>("items")
        .insert_many((0..DOCS).map(|i| doc! {"_id": i, "pad": "x".repeat(100)}))
        .await
        .unwrap();
    database
        .collection::<Document>("small")
        .insert_many((0..10).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("keel-backup-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keel = keel(&uri).await;
    Backup::builder(keel.clone())
        .include([db.clone()])
        .to(&dir)
        .run()
        .await
        .unwrap();

    let progress = client
        .database("keel_restore")
        .collection::<Document>("progress");
    let batches = DOCS as usize / BATCH;
    let mut rng = rand::rng();
    let mut interrupted = 0;
    for trial in 0..trials {
        let target = format!("{db}_t{trial}");
        let spec = format!("{uri}|{}|{db}|{target}", dir.display());
        // Somewhere in the data of either namespace, leaving room before the end.
        let kill_at = rng.random_range(1..batches - 10);
        let finished = tokio::task::block_in_place(|| one_trial(&spec, kill_at, &mut rng));
        let ours = doc! {"_id.ns": {"$in": [format!("{target}.items"), format!("{target}.small")]}};
        let left: Vec<Document> = progress
            .find(ours.clone())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        if !finished {
            interrupted += 1;
            assert!(!left.is_empty(), "trial {trial}: a checkpoint was kept");
        }
        let report = restore(&dir, &db, &target).into(&keel).await.unwrap();
        if !finished {
            assert!(report.resumed >= 1, "trial {trial}: {report:?}");
        }
        let items = client.database(&target).collection::<Document>("items");
        assert_eq!(
            items.count_documents(doc! {}).await.unwrap(),
            DOCS as u64,
            "trial {trial}"
        );
        let mut ids: Vec<i32> = items
            .find(doc! {})
            .await
            .unwrap()
            .try_collect::<Vec<Document>>()
            .await
            .unwrap()
            .iter()
            .map(|d| d.get_i32("_id").unwrap())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..DOCS).collect::<Vec<_>>(), "trial {trial}");
        assert_eq!(
            client
                .database(&target)
                .collection::<Document>("small")
                .count_documents(doc! {})
                .await
                .unwrap(),
            10
        );
        let after = progress.count_documents(ours).await.unwrap();
        assert_eq!(
            after, 0,
            "trial {trial}: a finished restore leaves no checkpoint"
        );
        client.database(&target).drop().await.unwrap();
    }
    println!("{interrupted} of {trials} restores killed mid-way, every one finished on rerun");
    assert!(interrupted * 2 >= trials, "most kills landed mid-restore");
    keel.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
