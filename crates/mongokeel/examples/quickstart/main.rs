//! Quick start: connect through Keel, write and read typed documents, and see what a failure
//! looks like. Uses `KEEL_URI` when set, otherwise an embedded keel-testkit server.
//! `tests/quickstart.rs` runs the same steps.
//!
//! ```sh
//! cargo run -p mongokeel --example quickstart
//! KEEL_URI=mongodb://localhost:27017 cargo run -p mongokeel --example quickstart
//! ```

mod tour;

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
    let tour = tour::run(uri).await?;
    println!("found: {:?}", tour.found);
    let (class, retryable, message) = tour.duplicate;
    println!("duplicate: class={class} retryable={retryable} user message={message:?}");
    Ok(())
}
