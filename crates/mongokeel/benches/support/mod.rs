//! What the benches share: the seeded collection they look documents up in, the two Keel stacks
//! the layer-by-layer benches compare, and the median of interleaved rounds. Each bench uses a
//! part of it, hence `dead_code` allowed for the module.

#![allow(dead_code)]

use std::time::Duration;

use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};

/// The raw driver's `bench.items` on `server`, seeded with `{_id: i, v: i}` for `i` in
/// `0..docs`.
pub(crate) async fn seeded_items(server: &TestServer, docs: i32) -> mongodb::Collection<Document> {
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let items = raw.database("bench").collection::<Document>("items");
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
