//! Keel/raw for `find_one` by `_id`, as users run Keel: the server in another process
//! (keel-testkit as a child, or `KEEL_BENCH_URI`; `KEEL_BENCH_SERVER=in-process` for the
//! cache-bound worst case, see `support::server`), the client on a current-thread runtime so its
//! CPU time is one thread's. Rounds of raw-driver calls alternate with rounds through the full
//! Keel stack (on a shared 2-core VM, sequential groups drift by ±20 %), under two loads: one
//! caller, one call at a time; and 16 tasks calling at once, as a server's request handlers do.
//!
//! Prints, per load, the median time and client CPU time per call with their interquartile
//! range, and the round-by-round ratios against the raw driver, next to the goals.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use mongodb::bson::{Document, doc};
use mongokeel::{Collection, Keel, KeelConfig};
use support::calls::{self, Load};

const ROUNDS: usize = 21;
const CALLS: u32 = 2_000;

/// The raw driver's lookup, or Keel's.
#[derive(Clone)]
enum Lookup {
    Raw(mongodb::Collection<Document>),
    Keel(Collection<Document>),
}

impl calls::Lookup for Lookup {
    async fn find(&self, id: u32) {
        let found = match self {
            Lookup::Raw(items) => items.find_one(doc! { "_id": id }).await.unwrap(),
            Lookup::Keel(items) => items.find_one(doc! { "_id": id }).await.unwrap(),
        };
        assert!(found.is_some());
    }
}

fn main() {
    support::client_runtime().block_on(run());
}

async fn run() {
    let server = support::BenchServer::from_env().await;
    println!("server: {}", server.describe());
    println!("client: one current-thread runtime; CPU from /proc/thread-self/schedstat");
    let raw = Lookup::Raw(support::seeded_items(server.uri(), 100).await);
    let keel = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
        .build()
        .await
        .unwrap();
    let variants = [
        ("raw driver", raw),
        (
            "Keel full stack",
            Lookup::Keel(keel.collection::<Document>("bench", "items")),
        ),
    ];
    for (load, goal) in Load::both(CALLS).into_iter().zip(["0.98", "0.99"]) {
        let rounds = calls::compare(&variants, load, ROUNDS, None).await;
        println!("find_one by _id (goals: throughput ≥ {goal}, CPU ≤ 1.03):");
        rounds.print(server.cpu_label());
    }
    keel.shutdown().await;
}
