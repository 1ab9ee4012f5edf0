//! Where the time and the client CPU of a Keel `find_one` go: the same lookup by `_id` through
//! successively more of the path, from the raw driver to `Collection::find_one` on the full
//! stack, against a server in another process by default (see `support::server` for
//! `KEEL_BENCH_URI` and `KEEL_BENCH_SERVER=in-process`), the client on a current-thread runtime
//! so its CPU time is one thread's. Rounds are interleaved (each starting at a different
//! variant) so every variant sees the same noise; one caller, then 16 concurrent callers.
//!
//! `KEEL_BENCH_ONLY=<index>` runs one variant, e.g. under `valgrind --tool=callgrind` to count
//! its instructions against variant 0 (the child server is not traced: callgrind follows only
//! this process unless given `--trace-children=yes`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use keel_pool_core::{CheckoutLimit, CheckoutLimitLayer, MongoService};
use mongodb::bson::{Document, doc};
use mongokeel::{AttemptTimeout, AttemptTimeoutLayer, Collection, Error, Keel, Operation};
use support::calls::{self, Load};
use tower::{Layer, ServiceExt};

const ROUNDS: usize = 15;
const CALLS: u32 = 1_000;

/// One more piece of the path per variant.
#[derive(Clone)]
enum Path {
    Raw(mongodb::Collection<Document>),
    /// Keel's driver client (with its pool event handlers).
    Managed(mongodb::Collection<Document>),
    Service(MongoService, mongodb::Collection<Document>),
    Limited(CheckoutLimit<MongoService>, mongodb::Collection<Document>),
    Timed(
        AttemptTimeout<CheckoutLimit<MongoService>>,
        mongodb::Collection<Document>,
    ),
    Run(Keel, mongodb::Collection<Document>),
    Collection(Collection<Document>),
}

impl calls::Lookup for Path {
    async fn find(&self, id: u32) {
        let found = match self {
            Path::Raw(items) | Path::Managed(items) => items
                .find_one(doc! { "_id": id })
                .await
                .map_err(Error::from),
            Path::Service(service, items) => service.clone().oneshot(lookup(items, id)).await,
            Path::Limited(limited, items) => limited.clone().oneshot(lookup(items, id)).await,
            Path::Timed(timed, items) => timed.clone().oneshot(lookup(items, id)).await,
            Path::Run(keel, items) => keel.run(lookup(items, id)).await,
            Path::Collection(items) => items.find_one(doc! { "_id": id }).await,
        }
        .unwrap();
        assert!(found.is_some());
    }
}

fn main() {
    support::client_runtime().block_on(run());
}

async fn run() {
    let only: Option<usize> = std::env::var("KEEL_BENCH_ONLY")
        .ok()
        .map(|v| v.parse().expect("KEEL_BENCH_ONLY is a variant index"));
    let server = support::BenchServer::from_env().await;
    println!("server: {}", server.describe());
    println!("client: one current-thread runtime; CPU from /proc/thread-self/schedstat");
    let raw_items = support::seeded_items(server.uri(), 100).await;
    let (keel, bare) = support::full_and_bare(server.uri()).await;
    let managed = keel
        .client()
        .current()
        .database("bench")
        .collection::<Document>("items");
    let service = MongoService::new(keel.client().clone());
    let limited = CheckoutLimitLayer::new(100, Duration::from_secs(5)).layer(service.clone());
    let timed = AttemptTimeoutLayer::new(Duration::from_secs(10)).layer(limited.clone());
    let variants = [
        ("raw driver", Path::Raw(raw_items)),
        ("Keel's driver client", Path::Managed(managed.clone())),
        ("MongoService", Path::Service(service, managed.clone())),
        ("+ CheckoutLimit", Path::Limited(limited, managed.clone())),
        ("+ AttemptTimeout", Path::Timed(timed, managed.clone())),
        (
            "Keel::run, no options",
            Path::Run(bare.clone(), managed.clone()),
        ),
        (
            "Keel::run, full stack",
            Path::Run(keel.clone(), managed.clone()),
        ),
        (
            "Collection::find_one",
            Path::Collection(keel.collection::<Document>("bench", "items")),
        ),
    ];
    for load in Load::both(CALLS) {
        println!("find_one by _id:");
        calls::compare(&variants, load, ROUNDS, only)
            .await
            .print(server.cpu_label());
    }
    keel.shutdown().await;
    bare.shutdown().await;
}

/// The lookup as an `Operation` on Keel's own driver collection, so the `Operation` variants
/// differ from "Keel's driver client" only by the layers around it.
fn lookup(items: &mongodb::Collection<Document>, id: u32) -> Operation<Option<Document>> {
    let items = items.clone();
    Operation::read("bench.items.find_one", move |_client| {
        let items = items.clone();
        async move { items.find_one(doc! { "_id": id }).await }
    })
}
