//! Crash safety, proved with SIGKILL: a child process (this test binary again) writes in a loop
//! from several tasks and prints each acknowledged op id; it is killed at random points. Every
//! acknowledged write must be in the queue after reopening, and after upload to a keel-testkit
//! server every queued operation must be applied exactly once.
//!
//! `KEEL_SYNC_CRASH_TRIALS` sets the number of kills (default 100).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader, Write as _},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_sync::{Changes, OperationKind, Store, SyncClient};
use mongodb::bson::{Bson, Document, doc};

const CHILD_VAR: &str = "KEEL_SYNC_CRASH_CHILD";
const WRITERS: i32 = 4;
const DB: &str = "keel_sync_crash";

/// The child: offline (nothing listens on its port), so every write stays queued.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_VAR) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let keel = support::lazy_keel("mongodb://127.0.0.1:9/").await;
        let client = SyncClient::builder(keel, Store::open(&path).unwrap())
            .build()
            .unwrap();
        let notes = client
            .collection::<Document>(DB, "counters")
            .subscribe(doc! {});
        let stdout = Arc::new(Mutex::new(std::io::stdout()));
        {
            let mut out = stdout.lock().unwrap();
            writeln!(out, "\nready").unwrap();
            out.flush().unwrap();
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|k| {
                let notes = notes.clone();
                let stdout = stdout.clone();
                tokio::spawn(async move {
                    if notes.get(k).unwrap().is_none() {
                        let id = notes.insert(doc! { "_id": k, "n": 0 }).await.unwrap();
                        let mut out = stdout.lock().unwrap();
                        writeln!(out, "\nack {id}").unwrap();
                        out.flush().unwrap();
                    }
                    loop {
                        let id = notes.update(k, Changes::new().inc("n", 1)).await.unwrap();
                        let mut out = stdout.lock().unwrap();
                        writeln!(out, "\nack {id}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            let _ = writer.await;
        }
    });
}

/// Runs the child until a random moment, SIGKILLs it, and returns the op ids it acknowledged.
fn one_trial(path: &std::path::Path, rng: &mut impl rand::Rng) -> HashSet<uuid::Uuid> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = HashSet::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                let _ = ready_tx.send(());
            } else if let Some(id) = line.strip_prefix("ack ")
                && let Ok(id) = uuid::Uuid::parse_str(id.trim())
            {
                acked.insert(id);
            }
        }
        acked
    });
    // Wait for the child to be writing (or to have died: then the trial proves nothing new).
    let _ = ready_rx.recv_timeout(Duration::from_secs(20));
    std::thread::sleep(Duration::from_micros(rng.random_range(0..40_000)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn acknowledged_writes_survive_sigkill_and_upload_exactly_once() {
    if std::env::var(CHILD_VAR).is_ok() {
        return;
    }
    let trials: usize = std::env::var("KEEL_SYNC_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let path = support::store_path("crash");
    let mut rng = rand::rng();
    let mut all_acked = 0_usize;
    for trial in 0..trials {
        let acked = one_trial(&path, &mut rng);
        all_acked += acked.len();
        let store = Store::open(&path).unwrap();
        let queued: HashSet<uuid::Uuid> =
            store.pending().unwrap().iter().map(|op| op.op_id).collect();
        let lost: Vec<_> = acked.difference(&queued).collect();
        assert!(
            lost.is_empty(),
            "trial {trial}: {} acknowledged writes are not in the queue after SIGKILL: {lost:?}",
            lost.len()
        );
    }
    eprintln!("{trials} SIGKILL trials, {all_acked} acknowledged writes, none lost");

    // Upload the whole queue; every queued update must count exactly once on the server.
    let store = Store::open(&path).unwrap();
    let queue = store.pending().unwrap();
    let mut expected: HashMap<i32, i32> = HashMap::new();
    for op in &queue {
        let Bson::Int32(k) = op.doc_id else {
            panic!("unexpected id {}", op.doc_id)
        };
        if matches!(op.kind, OperationKind::Update(_)) {
            *expected.entry(k).or_default() += 1;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let server = keel_testkit::TestServer::start().await.unwrap();
        let keel = support::keel(&server.uri()).await;
        let client = SyncClient::builder(keel, store).build().unwrap();
        let _notes = client
            .collection::<Document>(DB, "counters")
            .subscribe(doc! {});
        support::eventually("the queue drains", || client.status().borrow().pending == 0).await;
        let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
        let counters = raw.database(DB).collection::<Document>("counters");
        for (k, n) in expected {
            let found = counters.find_one(doc! { "_id": k }).await.unwrap().unwrap();
            assert_eq!(found.get_i32("n").unwrap(), n, "document {k}: {found}");
        }
        assert!(client.quarantined().is_empty());
    });
}
