//! Where the time of a Keel `find_one` goes: the same lookup by `_id` through successively more
//! of the path, from the raw driver to `Collection::find_one` on the full stack. Rounds are
//! interleaved (each starting at a different variant) so every variant sees the same noise.
//!
//! Knobs, for profilers:
//! * `KEEL_BENCH_CURRENT_THREAD=1` runs everything (callers, driver, testkit) on one thread: no
//!   cross-thread wake-ups, so the times follow the CPU work.
//! * `KEEL_BENCH_ONLY=<index>` runs one variant, e.g. under
//!   `valgrind --tool=callgrind` to count its instructions against variant 0.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use keel_pool_core::{CheckoutLimitLayer, MongoService};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{AttemptTimeoutLayer, Error, Operation};
use tower::{Layer, ServiceExt};

const ROUNDS: usize = 15;
const CALLS: u32 = 1_000;

const VARIANTS: [&str; 8] = [
    "raw driver",
    "Keel's driver client",
    "MongoService",
    "+ CheckoutLimit",
    "+ AttemptTimeout",
    "Keel::run, no options",
    "Keel::run, full stack",
    "Collection::find_one",
];

fn main() {
    let runtime = if std::env::var_os("KEEL_BENCH_CURRENT_THREAD").is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    runtime.unwrap().block_on(run());
}

async fn run() {
    let only: Option<usize> = std::env::var("KEEL_BENCH_ONLY")
        .ok()
        .map(|v| v.parse().expect("KEEL_BENCH_ONLY is a variant index"));
    let server = TestServer::start().await.unwrap();
    let raw_items = support::seeded_items(&server, 100).await;
    let (keel, bare) = support::full_and_bare(&server.uri()).await;
    let managed_items = keel
        .client()
        .current()
        .database("bench")
        .collection("items");
    let keel_items = keel.collection::<Document>("bench", "items");
    let service = MongoService::new(keel.client().clone());
    let limited = CheckoutLimitLayer::new(100, Duration::from_secs(5)).layer(service.clone());
    let timed = AttemptTimeoutLayer::new(Duration::from_secs(10)).layer(limited.clone());

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..=ROUNDS {
        for step in 0..VARIANTS.len() {
            let variant = (step + round) % VARIANTS.len();
            if only.is_some_and(|only| only != variant) {
                continue;
            }
            let started = Instant::now();
            for i in 0..CALLS {
                let id = i % 100;
                let op = || lookup(&managed_items, id);
                let found = match variant {
                    0 => raw_items
                        .find_one(doc! { "_id": id })
                        .await
                        .map_err(Error::from),
                    1 => managed_items
                        .find_one(doc! { "_id": id })
                        .await
                        .map_err(Error::from),
                    2 => service.clone().oneshot(op()).await,
                    3 => limited.clone().oneshot(op()).await,
                    4 => timed.clone().oneshot(op()).await,
                    5 => bare.run(op()).await,
                    6 => keel.run(op()).await,
                    _ => keel_items.find_one(doc! { "_id": id }).await,
                }
                .unwrap();
                assert!(found.is_some());
            }
            // Round 0 warms every path up.
            if round > 0 {
                times[variant].push(started.elapsed() / CALLS);
            }
        }
    }
    println!("find_one by _id, {ROUNDS} interleaved rounds of {CALLS} calls, median per call:");
    let medians: Vec<Option<Duration>> = times.iter_mut().map(|t| support::median(t)).collect();
    for (name, median) in VARIANTS.iter().zip(&medians) {
        let Some(median) = median else { continue };
        let ratio = medians[0].map(|raw| raw.as_secs_f64() / median.as_secs_f64());
        match ratio {
            Some(ratio) => println!("  {name:<24} {median:>10.1?}   raw/this {ratio:.3}"),
            None => println!("  {name:<24} {median:>10.1?}"),
        }
    }
    keel.shutdown().await;
    bare.shutdown().await;
}

/// The lookup as an `Operation` on Keel's own driver collection, so variants 2–6 differ from
/// variant 1 only by the layers around it.
fn lookup(items: &mongodb::Collection<Document>, id: u32) -> Operation<Option<Document>> {
    let items = items.clone();
    Operation::read("bench.items.find_one", move |_client| {
        let items = items.clone();
        async move { items.find_one(doc! { "_id": id }).await }
    })
}
