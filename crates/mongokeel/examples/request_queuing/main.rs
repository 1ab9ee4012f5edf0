//! An axum service that stays responsive under more load than its database pool can serve:
//! at most `pool.max_size` requests in flight, every other one refused at once with 429 and
//! `Retry-After` (see `app.rs`).
//!
//! ```sh
//! cargo run -p mongokeel --features axum --example request_queuing   # embedded testkit, port 3001
//! curl localhost:3001/items/1
//! ```
//!
//! `KEEL_URI` points it at a real deployment; `KEEL_HTTP_ADDR` changes the listen address.

mod app;

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
    let keel = Keel::builder(KeelConfig::development(uri)?).build().await?;
    let items = keel.collection::<Document>("keel_example", "items");
    items.delete_one(doc! { "_id": 1 }).await?;
    items
        .insert_one(doc! { "_id": 1, "name": "anchor" })
        .await?;
    // As many requests in flight as the pool has connections: more would only queue.
    let max_in_flight = usize::try_from(keel.config().pool.max_size)?;
    let addr = std::env::var("KEEL_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "listening on http://{} ({max_in_flight} in flight at most)",
        listener.local_addr()?
    );
    axum::serve(listener, app::router(&keel, max_in_flight))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    keel.shutdown().await;
    Ok(())
}
