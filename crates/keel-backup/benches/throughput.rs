//! Backup and restore throughput against their raw driver baselines, in the same run and on the
//! same data: backup docs/s vs a raw cursor drain (`find`, batches of 1000, raw documents
//! dropped) and vs the same drain writing the documents to one file in the same directory and
//! `fsync`ing it (what any backup must pay on that disk); restore docs/s vs raw unordered
//! `insert_many` batches of 1000 from memory, whole and split into its phases (verify at rest,
//! writes, the read-back comparison, from the restore's own progress events); goal for the
//! ratios ≥ 0.9. And the peak growth of the resident set during a backup of a collection 10×
//! the batch size.
//!
//! Against an in-process keel-testkit server, or `KEEL_BENCH_URI`. Rounds alternate the two
//! sides; the medians are reported. `KEEL_BENCH_DOCS` (default 50 000) and `KEEL_BENCH_ROUNDS`
//! (default 3) size the run.
//!
//! ```text
//! cargo bench -p keel-backup --bench throughput
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    let rounds = env("KEEL_BENCH_ROUNDS", 3);
    let (_server, uri) = match std::env::var("KEEL_BENCH_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let server = keel_testkit::TestServer::start().await.unwrap();
            let uri = server.uri();
            (Some(server), uri)
        }
    };
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

    // Backup vs raw drain, and vs a raw drain into an fsynced file beside the backups.
    let (mut raw, mut raw_file, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    let mut last_dir = None;
    let file_dir = scratch("raw-file");
    std::fs::create_dir_all(&file_dir).unwrap();
    for round in 0..rounds {
        let t = Instant::now();
        assert_eq!(raw_drain(&client, &db).await, docs_n as u64);
        raw.push(docs_n as f64 / t.elapsed().as_secs_f64());
        let path = file_dir.join(format!("items-{round}.bson"));
        let t = Instant::now();
        assert_eq!(raw_drain_to_file(&client, &db, &path).await, docs_n as u64);
        raw_file.push(docs_n as f64 / t.elapsed().as_secs_f64());
        let _ = std::fs::remove_file(&path);
        let dir = scratch(&format!("b{round}"));
        let t = Instant::now();
        let m = Backup::builder(keel.clone())
            .include([db.clone()])
            .to(&dir)
            .batch_size(BATCH)
            .parallelism(1)
            .run()
            .await
            .unwrap();
        ours.push(docs_n as f64 / t.elapsed().as_secs_f64());
        assert_eq!(m.documents(), docs_n as u64);
        if let Some(old) = last_dir.replace(dir) {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    let _ = std::fs::remove_dir_all(&file_dir);
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

    // Restore vs raw insert_many.
    let dir = last_dir.unwrap();
    let target = format!("{db}_r");
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    let (mut verify_s, mut writes_s, mut compare_s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        raw_insert(&client, &format!("{db}_raw"), &docs).await;
        raw.push(docs_n as f64 / t.elapsed().as_secs_f64());
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
        let r = Restore::from(&dir)
            .drop(true)
            .rename(db.clone(), target.clone())
            .batch_size(BATCH as usize)
            .progress(sender)
            .into(&keel)
            .await
            .unwrap();
        ours.push(docs_n as f64 / t.elapsed().as_secs_f64());
        assert_eq!(r.documents, docs_n as u64);
        let (planned, last_batch, done) = phases.await.unwrap();
        verify_s.push((planned - t).as_secs_f64());
        writes_s.push((last_batch - planned).as_secs_f64());
        compare_s.push((done - last_batch).as_secs_f64());
    }
    let (raw_r, ours_r) = (median(raw), median(ours));
    let (verify_s, writes_s, compare_s) = (median(verify_s), median(writes_s), median(compare_s));
    println!(
        "restore: {ours_r:>9.0} docs/s | raw insert_many  {raw_r:>9.0} docs/s | ratio {:.2} (goal >= 0.9)",
        ours_r / raw_r
    );
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
        "memory:  a backup of {} documents ({:.0} MB, 10x the batch of {BATCH}) grew the resident set by at most {:.1} MB (client and in-process server together)",
        10 * BATCH,
        big_bytes as f64 / 1e6,
        peak as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = client.database(&big_db).drop().await;
    let _ = client.database(&db).drop().await;
    keel.shutdown().await;
}
