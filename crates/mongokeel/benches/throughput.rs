//! `find_one` by `_id` round trips: the raw driver against the full Keel stack (breaker, retry
//! with budget, attempt timeout, checkout limit, managed client), both against one keel-testkit
//! server in this process. The goal is a Keel/raw throughput ratio of at least 0.97.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};

const DOCS: i64 = 100;

fn find_one(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, raw_items, keel, bare) = runtime.block_on(async {
        let server = TestServer::start().await.unwrap();
        let raw_items = support::seeded_items(&server.uri(), DOCS as i32).await;
        let keel = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
            .build()
            .await
            .unwrap();
        // The managed client and the always-on layers (attempt timeout, checkout limit) alone:
        // separates what the optional layers cost from what the base costs.
        let bare = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
            .without_retry()
            .without_breaker()
            .build()
            .await
            .unwrap();
        (server, raw_items, keel, bare)
    });
    let keel_items = keel.collection::<Document>("bench", "items");
    let bare_items = bare.collection::<Document>("bench", "items");

    let mut group = c.benchmark_group("find_one_by_id");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("raw_driver", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(timed_calls(iters, |id| {
                let items = raw_items.clone();
                async move { items.find_one(doc! { "_id": id }).await.unwrap() }
            }))
        });
    });
    for (name, items) in [
        ("keel_full_stack", &keel_items),
        ("keel_without_retry_and_breaker", &bare_items),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(timed_calls(iters, |id| {
                    let items = items.clone();
                    async move { items.find_one(doc! { "_id": id }).await.unwrap() }
                }))
            });
        });
    }
    group.finish();
    drop((keel, bare, raw_items, server));
}

/// Runs `iters` lookups of existing ids and returns the time they took.
async fn timed_calls<F, Fut>(iters: u64, call: F) -> Duration
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = Option<Document>>,
{
    let started = Instant::now();
    for i in 0..iters {
        let found = call((i % DOCS as u64) as i64).await;
        assert!(found.is_some());
    }
    started.elapsed()
}

criterion_group!(benches, find_one);
criterion_main!(benches);
