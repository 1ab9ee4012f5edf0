//! Keel/raw throughput ratio for `find_one` by `_id`, measured interleaved: rounds of raw-driver
//! calls alternate with rounds through the full Keel stack, so both see the same machine noise
//! (on a shared 2-core VM, sequential criterion groups drift by ±20 %). Two loads:
//! * one caller, one call at a time (each call waits for the previous one);
//! * `CONCURRENT_CALLERS` tasks calling at once, as a server's request handlers do.
//!
//! Prints the median time per call and the ratio for each.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{Collection, Keel, KeelConfig};

const ROUNDS: usize = 21;
const CALLS: u32 = 1_000;
const CONCURRENT_CALLERS: u32 = 16;

/// One way of looking a document up by `_id`, cheap to clone into a task.
#[derive(Clone)]
enum Lookup {
    Raw(mongodb::Collection<Document>),
    Keel(Collection<Document>),
}

impl Lookup {
    async fn find(&self, id: u32) {
        let found = match self {
            Lookup::Raw(items) => items.find_one(doc! { "_id": id }).await.unwrap(),
            Lookup::Keel(items) => items.find_one(doc! { "_id": id }).await.unwrap(),
        };
        assert!(found.is_some());
    }

    /// `calls` lookups from each of `callers` tasks; the time per call.
    async fn per_call(&self, callers: u32, calls: u32) -> Duration {
        let started = Instant::now();
        if callers == 1 {
            for i in 0..calls {
                self.find(i % 100).await;
            }
        } else {
            let mut tasks = tokio::task::JoinSet::new();
            for caller in 0..callers {
                let lookup = self.clone();
                tasks.spawn(async move {
                    for i in 0..calls {
                        lookup.find((caller + i) % 100).await;
                    }
                });
            }
            tasks.join_all().await;
        }
        started.elapsed() / (callers * calls)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = TestServer::start().await.unwrap();
    let raw_lookup = Lookup::Raw(support::seeded_items(&server, 100).await);
    let keel = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
        .build()
        .await
        .unwrap();
    let keel_lookup = Lookup::Keel(keel.collection::<Document>("bench", "items"));

    for (callers, calls, label) in [
        (1, CALLS, "one caller".to_owned()),
        (
            CONCURRENT_CALLERS,
            CALLS / CONCURRENT_CALLERS * 4,
            format!("{CONCURRENT_CALLERS} concurrent callers"),
        ),
    ] {
        let (mut raw_rounds, mut keel_rounds) = (Vec::new(), Vec::new());
        for round in 0..=ROUNDS {
            let raw_took = raw_lookup.per_call(callers, calls).await;
            let keel_took = keel_lookup.per_call(callers, calls).await;
            // Round 0 warms both paths up.
            if round > 0 {
                raw_rounds.push(raw_took);
                keel_rounds.push(keel_took);
            }
        }
        let raw_median = support::median(&mut raw_rounds).unwrap();
        let keel_median = support::median(&mut keel_rounds).unwrap();
        println!("find_one by _id, {label}, {ROUNDS} interleaved rounds, median per call:");
        println!("  raw driver      {raw_median:>10.1?}");
        println!("  Keel full stack {keel_median:>10.1?}");
        println!(
            "  throughput ratio Keel/raw = {:.3}",
            raw_median.as_secs_f64() / keel_median.as_secs_f64()
        );
    }
    keel.shutdown().await;
}
