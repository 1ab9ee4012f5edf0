//! An axum service whose handlers use Keel's façade and answer every failure with
//! `mongokeel::http`: 503 with `Retry-After` while the database is unavailable (the open
//! breaker included), 429 when overloaded, 409 for a duplicate key, RFC 9457 problem-details
//! JSON for every error and for malformed bodies, and never an internal message.
//!
//! ```sh
//! cargo run -p mongokeel --features axum --example axum_service   # embedded testkit, port 3000
//! curl -X POST localhost:3000/users -H 'content-type: application/json' -d '{"id":1,"name":"Ada"}'
//! curl localhost:3000/users/1
//! ```
//!
//! `KEEL_URI` points it at a real deployment; `KEEL_HTTP_ADDR` changes the listen address.

mod app;

use mongokeel::{Keel, KeelConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the embedded server alive for the whole run.
    let (_server, uri) = match std::env::var("KEEL_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let server = keel_testkit::TestServer::start().await?;
            let uri = server.uri();
            (Some(server), uri)
        }
    };
    let keel = Keel::builder(KeelConfig::development(uri)?).build().await?;
    let addr = std::env::var("KEEL_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app::router(&keel))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    keel.shutdown().await;
    Ok(())
}
