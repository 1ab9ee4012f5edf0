//! Durable enqueue throughput: operations per second acknowledged (fsync'd) with group commit
//! for 1 and 16 concurrent writers, with one fsync per operation, and with writer-side batches
//! (`write_many`); and the raw fsync rate of the same filesystem, which bounds them.
//!
//! `cargo bench -p keel-sync --bench enqueue` (`KEEL_SYNC_BENCH_OPS` operations per run,
//! default 2000). The client is offline (a lazy connection to a closed port), so only the local
//! write path is measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{io::Write as _, path::PathBuf, time::Instant};

use keel_sync::{Changes, CommitMode, Store, SyncClient, Write};
use mongodb::bson::{Document, doc};

fn bench_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keel-sync-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// fsyncs per second of a 4 KiB write each, in the directory the stores use: appended (the
/// file grows, so each `fdatasync` also commits its size) or overwriting the same block (what a
/// redb commit does: its pages and header are rewritten in place, one `fdatasync` per commit,
/// counted with `strace -f -c`).
fn raw_fsync_rate(count: usize, overwrite: bool) -> f64 {
    use std::os::unix::fs::FileExt as _;
    let dir = bench_dir("fsync");
    let mut file = std::fs::File::create(dir.join("fsync.bin")).unwrap();
    let block = vec![7_u8; 4096];
    file.write_all(&block).unwrap();
    file.sync_all().unwrap();
    let started = Instant::now();
    for _ in 0..count {
        if overwrite {
            file.write_all_at(&block, 0).unwrap();
        } else {
            file.write_all(&block).unwrap();
        }
        file.sync_data().unwrap();
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

async fn run(mode: CommitMode, writers: usize, batch: usize, ops: usize) -> f64 {
    let dir = bench_dir(&format!("{writers}-{batch}-{mode:?}"));
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
    let per_writer = ops / writers / batch * batch;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|k| {
            let notes = notes.clone();
            tokio::spawn(async move {
                if batch == 1 {
                    for _ in 0..per_writer {
                        notes
                            .update(k as i64, Changes::new().inc("n", 1))
                            .await
                            .unwrap();
                    }
                } else {
                    for _ in 0..per_writer / batch {
                        let writes = (0..batch)
                            .map(|_| Write::Update((k as i64).into(), Changes::new().inc("n", 1)))
                            .collect();
                        notes.write_many(writes).await.unwrap();
                    }
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
    // `KEEL_SYNC_BENCH_ONLY=<part of a label>` runs only the matching measurements (to count a
    // commit's system calls under `strace -f -c`, say).
    let only = std::env::var("KEEL_SYNC_BENCH_ONLY").unwrap_or_default();
    let fsyncs = raw_fsync_rate(500, false);
    println!("raw fsync rate (4 KiB write + fdatasync, same filesystem): {fsyncs:.0} fsyncs/s");
    let in_place = raw_fsync_rate(500, true);
    println!(
        "raw fsync rate (4 KiB overwrite in place + fdatasync): {in_place:.0} fsyncs/s; 16 writers that each wait for their own write share a commit at most 16 ways: ceiling {:.0} ops/s",
        16.0 * in_place
    );
    for (label, mode, writers, batch) in [
        ("group commit, 1 writer", CommitMode::Group, 1, 1),
        ("group commit, 16 writers", CommitMode::Group, 16, 1),
        (
            "one fsync per operation, 16 writers",
            CommitMode::PerOperation,
            16,
            1,
        ),
        ("write_many of 64, 1 writer", CommitMode::Group, 1, 64),
        ("write_many of 64, 16 writers", CommitMode::Group, 16, 64),
    ] {
        if !label.contains(only.as_str()) {
            continue;
        }
        let rate = runtime.block_on(run(mode, writers, batch, ops.max(writers * batch)));
        println!(
            "durable enqueue, {label}: {rate:.0} ops/s ({:.2} ops per raw fsync)",
            rate / fsyncs
        );
    }
}
