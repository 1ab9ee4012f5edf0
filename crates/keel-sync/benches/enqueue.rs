//! Durable enqueue throughput: operations per second acknowledged (fsync'd) with group commit
//! for 1 and 16 concurrent writers, and with one fsync per operation.
//!
//! `cargo bench -p keel-sync --bench enqueue` (`KEEL_SYNC_BENCH_OPS` operations per run,
//! default 2000). The client is offline (a lazy connection to a closed port), so only the local
//! write path is measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use keel_sync::{Changes, CommitMode, Store, SyncClient};
use mongodb::bson::{Document, doc};

async fn run(mode: CommitMode, writers: usize, ops: usize) -> f64 {
    let dir = std::env::temp_dir().join(format!(
        "keel-sync-bench-{}-{writers}-{mode:?}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = keel_config::KeelConfig::for_uri("mongodb://127.0.0.1:9/").unwrap();
    config.set("lazy_connect", "true").unwrap();
    let keel = mongokeel::Keel::builder(config).build().await.unwrap();
    let store = Store::open_with(dir.join("bench.redb"), mode).unwrap();
    let client = SyncClient::builder(keel, store).build().unwrap();
    let notes = client
        .collection::<Document>("bench", "notes")
        .subscribe(doc! {});
    for k in 0..writers {
        notes
            .insert(doc! { "_id": k as i64, "n": 0 })
            .await
            .unwrap();
    }
    let per_writer = ops / writers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|k| {
            let notes = notes.clone();
            tokio::spawn(async move {
                for _ in 0..per_writer {
                    notes
                        .update(k as i64, Changes::new().inc("n", 1))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    drop(notes);
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
    (per_writer * writers) as f64 / elapsed.as_secs_f64()
}

fn main() {
    let ops: usize = std::env::var("KEEL_SYNC_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (label, mode, writers) in [
        ("group commit, 1 writer", CommitMode::Group, 1),
        ("group commit, 16 writers", CommitMode::Group, 16),
        (
            "one fsync per operation, 16 writers",
            CommitMode::PerOperation,
            16,
        ),
    ] {
        let rate = runtime.block_on(run(mode, writers, ops));
        println!("durable enqueue, {label}: {rate:.0} ops/s ({ops} operations)");
    }
}
