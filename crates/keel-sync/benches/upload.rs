//! Upload throughput against the raw driver applying the same updates, and the time from a
//! reconnect to an empty queue, against an in-process keel-testkit server (server and client
//! share the cores): a standalone (the transaction-free upload), then a one-member replica set
//! (the upload in transactions).
//!
//! `cargo bench -p keel-sync --bench upload` (`KEEL_SYNC_BENCH_UPLOAD_OPS` queued operations,
//! default 10 000, spread over 100 documents).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use keel_pool_core::ConnectionState;
use keel_sync::{Changes, Store, SyncClient, Write};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};

const DOCS: i64 = 100;

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(600), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} did not happen"));
}

/// The raw driver: the same `$inc` updates, one after the other (the queue uploads in order).
async fn raw(uri: &str, ops: usize) -> f64 {
    let coll = mongodb::Client::with_uri_str(uri)
        .await
        .unwrap()
        .database("bench_raw")
        .collection::<Document>("notes");
    for k in 0..DOCS {
        coll.insert_one(doc! { "_id": k, "n": 0 }).await.unwrap();
    }
    let started = Instant::now();
    for i in 0..ops {
        coll.update_one(doc! { "_id": i as i64 % DOCS }, doc! { "$inc": { "n": 1 } })
            .await
            .unwrap();
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

/// (uploaded ops/s once connected, reconnect-to-empty time)
async fn sync(server: &TestServer, ops: usize) -> (f64, Duration) {
    let dir = std::env::temp_dir().join(format!("keel-sync-bench-upload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = keel_config::KeelConfig::development(server.uri()).unwrap();
    config.set("heartbeat", "500ms").unwrap();
    let keel = mongokeel::Keel::builder(config).build().await.unwrap();
    let client = SyncClient::builder(keel.clone(), Store::open(dir.join("bench.redb")).unwrap())
        .build()
        .unwrap();
    let notes = client
        .collection::<Document>("bench_sync", "notes")
        .subscribe(doc! {});
    let inserts = (0..DOCS)
        .map(|k| Write::Insert(doc! { "_id": k, "n": 0 }))
        .collect();
    notes.write_many(inserts).await.unwrap();
    wait_for("the inserts upload", || {
        client.status().borrow().pending == 0
    })
    .await;

    server.stop().await;
    wait_for("the client sees the outage", || {
        keel.state() != ConnectionState::Connected
    })
    .await;
    for chunk in (0..ops).collect::<Vec<_>>().chunks(500) {
        let writes = chunk
            .iter()
            .map(|i| Write::Update((*i as i64 % DOCS).into(), Changes::new().inc("n", 1)))
            .collect();
        notes.write_many(writes).await.unwrap();
    }
    assert_eq!(client.status().borrow().pending, ops);
    server.restart().await.unwrap();
    let restarted = Instant::now();
    wait_for("the client reconnects", || {
        keel.state() == ConnectionState::Connected
    })
    .await;
    let connected = Instant::now();
    wait_for("the queue drains", || client.status().borrow().pending == 0).await;
    let drained = Instant::now();
    drop(notes);
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
    (
        ops as f64 / (drained - connected).as_secs_f64(),
        drained - restarted,
    )
}

fn main() {
    let ops: usize = std::env::var("KEEL_SYNC_BENCH_UPLOAD_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // A standalone has no transactions (the transaction-free upload); a one-member replica
        // set has them (the upload in transactions).
        for (label, server) in [
            ("standalone", TestServer::start().await.unwrap()),
            (
                "replica set, in transactions",
                TestServer::replica_set("rs0", 1).await.unwrap(),
            ),
        ] {
            let raw_rate = raw(&server.uri(), ops).await;
            let (sync_rate, drain) = sync(&server, ops).await;
            println!("[{label}] raw driver, {ops} sequential $inc updates: {raw_rate:.0} ops/s");
            println!(
                "[{label}] keel-sync upload of the same {ops} queued updates: {sync_rate:.0} ops/s"
            );
            println!(
                "[{label}] ratio upload / raw: {:.2} (goal >= 0.8)",
                sync_rate / raw_rate
            );
            println!(
                "[{label}] reconnect (server restarted) to an empty queue, {ops} operations: {:.2} s",
                drain.as_secs_f64()
            );
        }
    });
}
