//! Keel's own cost per call, with the caches warm: the same operation, one that completes at
//! once without touching the network, called directly and through successively more of the
//! stack. What it prints is the CPU time each layer adds when nothing else competes for the
//! caches; `breakdown` shows what the same layers cost around a real round trip, where the
//! driver, tokio and the server evict Keel's code and data between calls.
//!
//! Rounds are interleaved, so every variant sees the same machine noise.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use keel_pool_core::MongoService;
use keel_testkit::TestServer;
use mongokeel::Operation;
use tower::ServiceExt;

const ROUNDS: usize = 15;
const CALLS: u32 = 50_000;

const VARIANTS: [&str; 4] = [
    "the operation alone",
    "MongoService",
    "Keel::run, no options",
    "Keel::run, full stack",
];

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = TestServer::start().await.unwrap();
    let (keel, bare) = support::full_and_bare(&server.uri()).await;
    let service = MongoService::new(keel.client().clone());
    let client = keel.client().current();

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..=ROUNDS {
        for step in 0..VARIANTS.len() {
            let variant = (step + round) % VARIANTS.len();
            let started = Instant::now();
            for i in 0..CALLS {
                let value = match variant {
                    0 => instant(i).call(client.clone()).await.map_err(Into::into),
                    1 => service.clone().oneshot(instant(i)).await,
                    2 => bare.run(instant(i)).await,
                    _ => keel.run(instant(i)).await,
                }
                .unwrap();
                assert_eq!(value, i);
            }
            // Round 0 warms every path up.
            if round > 0 {
                times[variant].push(started.elapsed() / CALLS);
            }
        }
    }
    println!("an operation that completes at once, {ROUNDS} interleaved rounds of {CALLS} calls:");
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| support::median(t).unwrap())
        .collect();
    for (name, median) in VARIANTS.iter().zip(&medians) {
        let added = median.saturating_sub(medians[0]);
        println!("  {name:<24} {median:>10.1?} per call, {added:>9.1?} more than the operation");
    }
    keel.shutdown().await;
    bare.shutdown().await;
}

/// An operation named like a real lookup (so the metrics layer does the same work) that never
/// waits.
fn instant(value: u32) -> Operation<u32> {
    Operation::read(
        "bench.items.find_one",
        move |_client| async move { Ok(value) },
    )
}
