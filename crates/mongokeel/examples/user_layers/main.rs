//! Your own `tower` layers in Keel's stack: a per-process rate limit and a call log around the
//! whole call, a log of each attempt, and (with the `otel` feature) keel-health's OpenTelemetry
//! spans. Uses `KEEL_URI` when set, otherwise an embedded keel-testkit server.
//! `tests/user_layers.rs` checks the same layers.
//!
//! ```sh
//! cargo run -p mongokeel --example user_layers
//! ```

mod layers;

use std::num::NonZeroU32;

use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_server, uri) = match std::env::var("KEEL_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let server = keel_testkit::TestServer::start().await?;
            let uri = server.uri();
            (Some(server), uri)
        }
    };
    let calls = layers::CallLogLayer::new("call");
    let attempts = layers::CallLogLayer::new("attempt");
    let builder = Keel::builder(KeelConfig::for_uri(uri)?)
        .layer_around_call(layers::RateLimitLayer::per_second(
            NonZeroU32::MIN.saturating_add(99),
        ))
        .layer_around_call(calls.clone())
        .layer_around_attempt(attempts.clone());
    // Install an OpenTelemetry SDK provider first (`opentelemetry::global`), then:
    #[cfg(feature = "otel")]
    let builder = builder
        .layer_around_call(keel_health::otel::OtelLayer::new())
        .layer_around_attempt(keel_health::otel::OtelAttemptLayer::new());
    let keel = builder.build().await?;

    let items = keel.collection::<Document>("example", "items");
    items.insert_one(doc! { "_id": 1 }).await?;
    println!("found: {:?}", items.find_one(doc! { "_id": 1 }).await?);
    for line in calls.lines().iter().chain(&attempts.lines()) {
        println!("{line}");
    }
    keel.shutdown().await;
    Ok(())
}
