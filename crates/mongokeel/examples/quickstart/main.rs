//! Quick start: connect through Keel, write and read typed documents, and see what a failure
//! looks like. Uses `KEEL_URI` when set, otherwise an embedded keel-testkit server.
//!
//! ```sh
//! cargo run -p mongokeel --example quickstart
//! KEEL_URI=mongodb://localhost:27017 cargo run -p mongokeel --example quickstart
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mongodb::bson::doc;
use mongokeel::{Keel, KeelConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct User {
    #[serde(rename = "_id")]
    id: i64,
    name: String,
    logins: i64,
}

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
    let config = KeelConfig::development(uri)?;
    let keel = Keel::builder(config).build().await?;
    let users = keel.collection::<User>("keel_quickstart", "users");

    // Inserts with a client-chosen _id are idempotent: Keel may retry them safely.
    users
        .insert_one(User {
            id: 1,
            name: "Ada".into(),
            logins: 0,
        })
        .await?;
    // `$inc` is not idempotent: Keel retries it only when the server never saw it.
    users
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "logins": 1 } })
        .await?;
    let ada = users.find_one(doc! { "_id": 1 }).await?;
    println!("found: {ada:?}");

    // A duplicate key is the caller's problem: never retried, safe message for end users.
    let err = users
        .insert_one(User {
            id: 1,
            name: "Twin".into(),
            logins: 0,
        })
        .await
        .unwrap_err();
    println!(
        "duplicate: class={} retryable={} user message={:?}",
        err.class(),
        err.is_retryable(mongokeel::OperationKind::Write { idempotent: true }),
        err.user_message()
    );

    users.delete_many(doc! {}).await?;
    let report = keel.shutdown().await;
    println!("shut down: {report:?}");
    Ok(())
}
