//! Backup and restore throughput against their raw driver baselines, in the same run and on the
//! same data: backup docs/s vs a raw cursor drain (`find`, batches of 1000, raw documents
//! dropped) and vs the same drain writing the documents to one file in the same directory and
//! `fsync`ing it (what any backup must pay on that disk); restore docs/s vs raw unordered
//! `insert_many` batches of 1000 from memory, whole and split into its phases (verify at rest,
//! writes, the read-back comparison, from the restore's own progress events); goal for the
//! ratios ≥ 0.9. And the peak growth of the resident set during a backup of a collection 10×
//! the batch size.
//!
//! Against the keel-testkit binary in another process, as users run MongoDB (mongokeel's
//! bench server, `crates/mongokeel/benches/support/server.rs`, used as it is:
//! `KEEL_BENCH_SERVER=in-process` for a server on the bench's runtime, `KEEL_BENCH_URI` for an
//! existing deployment). Rounds alternate the two sides; the medians and each round's ratio
//! are reported. `KEEL_BENCH_DOCS` (default 50 000) and `KEEL_BENCH_ROUNDS` (default 5) size
//! the run. After changing keel-testkit, rebuild its binary:
//! `cargo build --release -p keel-testkit --bin keel-testkit`.
//!
//! ```text
//! cargo bench -p keel-backup --bench throughput
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The benches of the workspace share one way to start the server in another process; this one
// includes mongokeel's rather than keeping a copy (it uses only std and keel-testkit).
#[allow(dead_code)]
#[path = "../../mongokeel/benches/support/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use futures_util::TryStreamExt as _;
use keel_backup::{Backup, Restore};
use mongodb::bson::{RawDocumentBuf, doc};
use mongokeel::{Keel, KeelConfig};

/// The process's resident set size in bytes (`VmRSS` in `/proc/self/status`; 0 elsewhere).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

const BATCH: u32 = 1000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// This process's CPU time so far, in seconds: the sum over its threads of the first field of
/// `/proc/self/task/*/schedstat` (time on a CPU in nanoseconds; the kernel's
/// Documentation/scheduler/sched-stats.rst), 0 elsewhere. Threads that exited are not counted:
/// the runtime's workers live for the whole bench and its blocking threads for 10 s after their
/// last job, longer than a round. With the server in another process this is the client's CPU
/// alone, which the machine's load does not inflate the way it inflates wall-clock time.
fn cpu() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let nanos: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}

/// Client CPU per document of both sides (medians) and their ratio.
fn print_cpu(ours_name: &str, ours: &[f64], raw_name: &str, raw: &[f64], docs: usize) {
    let (o, r) = (median(ours.to_vec()), median(raw.to_vec()));
    println!(
        "         client CPU per document: {ours_name} {:.2} us, {raw_name} {:.2} us, ratio {:.2} (load-independent; a ratio of 1.11 would allow 0.9 of the raw throughput on a client-bound run)",
        o / docs as f64 * 1e6,
        r / docs as f64 * 1e6,
        o / r
    );
}

/// Each round's ratio, `ours[i] / raw[i]`.
fn per_round(ours: &[f64], raw: &[f64]) -> String {
    ours.iter()
        .zip(raw)
        .map(|(o, r)| format!("{:.2}", o / r))
        .collect::<Vec<_>>()
        .join(", ")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keel-backup-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn raw_drain(client: &mongodb::Client, db: &str) -> u64 {
    let mut cursor = client
        .database(db)
        .collection::<RawDocumentBuf>("items")
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .batch_size(BATCH)
        .await
        .unwrap();
    let mut n = 0;
    while let Some(d) = cursor.try_next().await.unwrap() {
        std::hint::black_box(d.as_bytes().len());
        n += 1;
    }
    n
}

/// The raw drain, writing each document to `path` as it comes and `fsync`ing the file at the
/// end: the least any backup to that directory does.
async fn raw_drain_to_file(client: &mongodb::Client, db: &str, path: &std::path::Path) -> u64 {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut cursor = client
        .database(db)
        .collection::<RawDocumentBuf>("items")
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .batch_size(BATCH)
        .await
        .unwrap();
    let mut n = 0;
    while let Some(d) = cursor.try_next().await.unwrap() {
        out.write_all(d.as_bytes()).unwrap();
        n += 1;
    }
    out.into_inner().unwrap().sync_all().unwrap();
    n
}

async fn raw_insert(client: &mongodb::Client, db: &str, docs: &[RawDocumentBuf]) {
    let coll = client.database(db).collection::<RawDocumentBuf>("items");
    let _ = coll.drop().await;
    for chunk in docs.chunks(BATCH as usize) {
        coll.insert_many(chunk.to_vec())
            .ordered(false)
            .await
            .unwrap();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let docs_n = env("KEEL_BENCH_DOCS", 50_000);
    let rounds = env("KEEL_BENCH_ROUNDS", 5);
    let server = server::BenchServer::from_env().await;
    println!("server: {}", server.describe());
    let uri = server.uri().to_owned();
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let keel = Keel::builder(KeelConfig::development(&uri).unwrap())
        .build()
        .await
        .unwrap();
    let db = format!("kb_bench_{}", std::process::id());
    let docs: Vec<RawDocumentBuf> = (0..docs_n as i64)
        .map(|i| {
            let d = doc! {"_id": i, "name": format!("user {i}"), "n": i, "tags": ["a", "b", "c"], "pad": "x".repeat(120)};
            RawDocumentBuf::from_document(&d).unwrap()
        })
        .collect();
    let bytes: usize = docs.iter().map(|d| d.as_bytes().len()).sum();
    raw_insert(&client, &db, &docs).await;
    println!(
        "data: {docs_n} documents, {:.1} MB, batches of {BATCH}, {rounds} rounds",
        bytes as f64 / 1e6
    );

    // What every backup pays whatever its size: buildInfo, hello, the cluster time, listings
    // (twice: the re-listing after the last collection), listIndexes, estimated counts, and four
    // fsynced files (metadata, documents, prelude, manifest) and a rename. Measured on a
    // one-document database.
    let tiny_db = format!("{db}_tiny");
    client
        .database(&tiny_db)
        .collection::<RawDocumentBuf>("one")
        .insert_one(RawDocumentBuf::from_document(&doc! {"_id": 1}).unwrap())
        .await
        .unwrap();
    let mut fixed = Vec::new();
    for round in 0..rounds {
        let dir = scratch(&format!("tiny{round}"));
        let t = Instant::now();
        Backup::builder(keel.clone())
            .include([tiny_db.clone()])
            .to(&dir)
            .run()
            .await
            .unwrap();
        fixed.push(t.elapsed().as_secs_f64());
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = client.database(&tiny_db).drop().await;
    let fixed = median(fixed);

    // Backup vs raw drain, and vs a raw drain into an fsynced file beside the backups.
    let (mut raw, mut raw_file, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    let (mut raw_cpu, mut ours_cpu) = (Vec::new(), Vec::new());
    let mut last_dir = None;
    let file_dir = scratch("raw-file");
    std::fs::create_dir_all(&file_dir).unwrap();
    for round in 0..rounds {
        let t = Instant::now();
        let c = cpu();
        assert_eq!(raw_drain(&client, &db).await, docs_n as u64);
        raw.push(docs_n as f64 / t.elapsed().as_secs_f64());
        raw_cpu.push(cpu() - c);
        let path = file_dir.join(format!("items-{round}.bson"));
        let t = Instant::now();
        assert_eq!(raw_drain_to_file(&client, &db, &path).await, docs_n as u64);
        raw_file.push(docs_n as f64 / t.elapsed().as_secs_f64());
        let _ = std::fs::remove_file(&path);
        let dir = scratch(&format!("b{round}"));
        let t = Instant::now();
        let c = cpu();
        let m = Backup::builder(keel.clone())
            .include([db.clone()])
            .to(&dir)
            .batch_size(BATCH)
            .parallelism(1)
            .run()
            .await
            .unwrap();
        ours.push(docs_n as f64 / t.elapsed().as_secs_f64());
        ours_cpu.push(cpu() - c);
        assert_eq!(m.documents(), docs_n as u64);
        if let Some(old) = last_dir.replace(dir) {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    let _ = std::fs::remove_dir_all(&file_dir);
    println!("backup ratio per round: {}", per_round(&ours, &raw));
    let (raw_b, raw_f, ours_b) = (median(raw), median(raw_file), median(ours));
    println!(
        "backup:  {ours_b:>9.0} docs/s | raw cursor drain {raw_b:>9.0} docs/s | ratio {:.2} (goal >= 0.9)",
        ours_b / raw_b
    );
    println!(
        "         raw drain + write + fsync of one file in {} {raw_f:>9.0} docs/s | ratio {:.2}",
        std::env::temp_dir().display(),
        ours_b / raw_f
    );
    print_cpu("backup", &ours_cpu, "raw drain", &raw_cpu, docs_n);
    let per_doc = 1.0 / ours_b - fixed / docs_n as f64;
    println!(
        "         fixed cost of any backup (one document): {:.0} ms; without it the backup streams {:.0} docs/s, ratio {:.2} to the raw drain",
        fixed * 1e3,
        1.0 / per_doc,
        1.0 / per_doc / raw_b
    );

    // Restore vs raw insert_many.
    let dir = last_dir.unwrap();
    let target = format!("{db}_r");
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    let (mut raw_cpu, mut ours_cpu) = (Vec::new(), Vec::new());
    let (mut verify_s, mut writes_s, mut compare_s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let c = cpu();
        raw_insert(&client, &format!("{db}_raw"), &docs).await;
        raw.push(docs_n as f64 / t.elapsed().as_secs_f64());
        raw_cpu.push(cpu() - c);
        // The phases from the restore's own progress events: `Planned` once verified, one
        // event per batch written, `done` once the read-back matched the manifest.
        let (sender, mut events) = tokio::sync::mpsc::channel(100_000);
        let phases = tokio::spawn(async move {
            let (mut planned, mut last_batch, mut done) = (None, None, None);
            while let Some(event) = events.recv().await {
                let now = Instant::now();
                match event {
                    keel_backup::Progress::Planned { .. } => planned = Some(now),
                    keel_backup::Progress::Namespace { done: false, .. } => last_batch = Some(now),
                    keel_backup::Progress::Namespace { done: true, .. } => done = Some(now),
                    _ => {}
                }
            }
            (planned.unwrap(), last_batch.unwrap(), done.unwrap())
        });
        let t = Instant::now();
        let c = cpu();
        let r = Restore::from(&dir)
            .drop(true)
            .rename(db.clone(), target.clone())
            .batch_size(BATCH as usize)
            .progress(sender)
            .into(&keel)
            .await
            .unwrap();
        ours.push(docs_n as f64 / t.elapsed().as_secs_f64());
        ours_cpu.push(cpu() - c);
        assert_eq!(r.documents, docs_n as u64);
        let (planned, last_batch, done) = phases.await.unwrap();
        verify_s.push((planned - t).as_secs_f64());
        writes_s.push((last_batch - planned).as_secs_f64());
        compare_s.push((done - last_batch).as_secs_f64());
    }
    println!("restore ratio per round: {}", per_round(&ours, &raw));
    println!(
        "restore phases per round (verify / writes / read-back, ms): {}",
        verify_s
            .iter()
            .zip(&writes_s)
            .zip(&compare_s)
            .map(|((v, w), c)| format!("{:.0}/{:.0}/{:.0}", v * 1e3, w * 1e3, c * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (raw_r, ours_r) = (median(raw), median(ours));
    let (verify_s, writes_s, compare_s) = (median(verify_s), median(writes_s), median(compare_s));
    println!(
        "restore: {ours_r:>9.0} docs/s | raw insert_many  {raw_r:>9.0} docs/s | ratio {:.2} (goal >= 0.9)",
        ours_r / raw_r
    );
    print_cpu("restore", &ours_cpu, "raw insert_many", &raw_cpu, docs_n);
    println!(
        "         phases: verify at rest {:.0} ms, writes {:.0} ms ({:.0} docs/s, ratio {:.2} to raw insert_many), read-back comparison {:.0} ms",
        verify_s * 1e3,
        writes_s * 1e3,
        docs_n as f64 / writes_s,
        docs_n as f64 / writes_s / raw_r,
        compare_s * 1e3
    );
    let t = Instant::now();
    keel_backup::verify(&dir).unwrap();
    println!(
        "         of which verify at rest: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = client.database(&target).drop().await;
    let _ = client.database(&format!("{db}_raw")).drop().await;

    // Peak memory: a collection 10× the batch size, of large documents.
    let big_db = format!("{db}_big");
    let big: Vec<RawDocumentBuf> = (0..(10 * BATCH) as i64)
        .map(|i| {
            RawDocumentBuf::from_document(&doc! {"_id": i, "blob": "y".repeat(10_000)}).unwrap()
        })
        .collect();
    let big_bytes: usize = big.iter().map(|d| d.as_bytes().len()).sum();
    raw_insert(&client, &big_db, &big).await;
    drop(big);
    let dir = scratch("big");
    // RSS sampled every millisecond on a thread of its own while the backup runs.
    let before = rss();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    Backup::builder(keel.clone())
        .include([big_db.clone()])
        .to(&dir)
        .batch_size(BATCH)
        .run()
        .await
        .unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed).saturating_sub(before);
    println!(
        "memory:  a backup of {} documents ({:.0} MB, 10x the batch of {BATCH}) grew this process's resident set by at most {:.1} MB (the client; the server too only with KEEL_BENCH_SERVER=in-process)",
        10 * BATCH,
        big_bytes as f64 / 1e6,
        peak as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = client.database(&big_db).drop().await;
    let _ = client.database(&db).drop().await;
    keel.shutdown().await;
}
