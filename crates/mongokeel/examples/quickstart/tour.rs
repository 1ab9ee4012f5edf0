//! The quick start's steps, callable from `main` and from `tests/quickstart.rs`: connect, write,
//! read, see what a duplicate key looks like, shut down.

use mongodb::bson::doc;
use mongokeel::{Keel, KeelConfig, OperationKind};
use serde::{Deserialize, Serialize};

/// A stored user.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct User {
    #[serde(rename = "_id")]
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) logins: i64,
}

/// What the tour saw, printed by `main` and checked by the test.
#[derive(Debug)]
pub(crate) struct Tour {
    /// Ada after one login.
    pub(crate) found: Option<User>,
    /// The duplicate insert's class, retry decision and user-safe message.
    pub(crate) duplicate: (String, bool, String),
}

/// Runs the tour against `uri`, in the database `keel_quickstart`.
pub(crate) async fn run(uri: String) -> Result<Tour, Box<dyn std::error::Error>> {
    let keel = Keel::builder(KeelConfig::development(uri)?).build().await?;
    let users = keel.collection::<User>("keel_quickstart", "users");
    users.delete_many(doc! {}).await?;

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
    let found = users.find_one(doc! { "_id": 1 }).await?;

    // A duplicate key is the caller's problem: never retried, safe message for end users.
    let duplicate = match users
        .insert_one(User {
            id: 1,
            name: "Twin".into(),
            logins: 0,
        })
        .await
    {
        Ok(_) => return Err("the duplicate insert was accepted".into()),
        Err(err) => (
            err.class().to_string(),
            err.is_retryable(OperationKind::Write { idempotent: true }),
            err.user_message().to_owned(),
        ),
    };

    users.delete_many(doc! {}).await?;
    keel.shutdown().await;
    Ok(Tour { found, duplicate })
}
