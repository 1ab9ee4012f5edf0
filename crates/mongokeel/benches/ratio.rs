//! Keel/raw throughput ratio for `find_one` by `_id`, measured interleaved: rounds of raw-driver
//! calls alternate with rounds through the full Keel stack, so both see the same machine noise
//! (on a shared 2-core VM, sequential criterion groups drift by ±20 %). Prints the medians.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};

const ROUNDS: usize = 21;
const CALLS: u32 = 1_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = TestServer::start().await.unwrap();
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let keel = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
        .build()
        .await
        .unwrap();
    let docs: Vec<Document> = (0..100).map(|i| doc! { "_id": i, "v": i }).collect();
    let raw_items = raw.database("bench").collection::<Document>("items");
    raw_items.insert_many(docs).await.unwrap();
    let keel_items = keel.collection::<Document>("bench", "items");

    let (mut raw_rounds, mut keel_rounds) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        let started = Instant::now();
        for i in 0..CALLS {
            let found = raw_items.find_one(doc! { "_id": i % 100 }).await.unwrap();
            assert!(found.is_some());
        }
        let raw_took = started.elapsed();
        let started = Instant::now();
        for i in 0..CALLS {
            let found = keel_items.find_one(doc! { "_id": i % 100 }).await.unwrap();
            assert!(found.is_some());
        }
        let keel_took = started.elapsed();
        if round > 0 {
            // Round 0 warms both paths up.
            raw_rounds.push(raw_took / CALLS);
            keel_rounds.push(keel_took / CALLS);
        }
    }
    let raw_median = median(&mut raw_rounds);
    let keel_median = median(&mut keel_rounds);
    println!("find_one by _id, {ROUNDS} interleaved rounds of {CALLS} calls, median per call:");
    println!("  raw driver      {raw_median:>10.1?}");
    println!("  Keel full stack {keel_median:>10.1?}");
    println!(
        "  throughput ratio Keel/raw = {:.3}",
        raw_median.as_secs_f64() / keel_median.as_secs_f64()
    );
    keel.shutdown().await;
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}
