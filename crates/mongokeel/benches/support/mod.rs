//! What the benches share: the server they run against (`server`), the client's CPU clock
//! (`cpu`), interleaved measurement of one caller and of concurrent callers (`calls`), medians
//! with their spread (`stats`), the seeded collection they look documents up in and the two Keel
//! stacks the layer-by-layer benches compare. Each bench uses a part of it, hence `dead_code`
//! allowed for the module.

#![allow(dead_code)]

pub(crate) mod calls;
pub(crate) mod cpu;
pub(crate) mod server;
pub(crate) mod stats;

#[allow(unused_imports)] // overhead and throughput keep the in-process server
pub(crate) use server::BenchServer;

use std::time::Duration;

use mongodb::bson::{Document, doc};

/// The raw driver's `bench.items` on the server at `uri`, emptied and seeded with `{_id: i, v: i}`
/// for `i` in `0..docs` (emptied first, so a long-lived deployment given with `KEEL_BENCH_URI`
/// can be benchmarked again).
pub(crate) async fn seeded_items(uri: &str, docs: i32) -> mongodb::Collection<Document> {
    let raw = mongodb::Client::with_uri_str(uri).await.unwrap();
    let items = raw.database("bench").collection::<Document>("items");
    items.delete_many(doc! {}).await.unwrap();
    let seed: Vec<Document> = (0..docs).map(|i| doc! { "_id": i, "v": i }).collect();
    items.insert_many(seed).await.unwrap();
    items
}

/// The full default stack, and one without any optional layer (retry, breaker, health gate),
/// both on a server at `uri`.
#[cfg(feature = "full")]
pub(crate) async fn full_and_bare(uri: &str) -> (mongokeel::Keel, mongokeel::Keel) {
    use mongokeel::{Keel, KeelConfig};
    let config = || KeelConfig::for_uri(uri).unwrap();
    let full = Keel::builder(config()).build().await.unwrap();
    let bare = Keel::builder(config())
        .without_retry()
        .without_breaker()
        .without_health_gate()
        .build()
        .await
        .unwrap();
    (full, bare)
}

/// The median of a variant's rounds (`None` for a variant that did not run).
pub(crate) fn median(values: &mut [Duration]) -> Option<Duration> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// A current-thread runtime: the client's tasks (callers, the driver's connection and monitor
/// tasks, Keel's) all run on this thread, so its CPU time is the client's CPU time.
pub(crate) fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
