//! The typed `Collection<T>` against a live keel-testkit server: every method round-trips, and
//! each one's retry safety holds when the connection drops mid-call (fail points, as on mongod).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_core::{ErrorClass, ErrorKind, Operation};
use keel_testkit::{FailCommand, TestServer};
use mongodb::bson::{Document, doc};
use mongokeel::{Collection, Keel, KeelConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    #[serde(rename = "_id")]
    id: i64,
    name: String,
    qty: i64,
}

fn item(id: i64, name: &str, qty: i64) -> Item {
    Item {
        id,
        name: name.to_owned(),
        qty,
    }
}

/// Development defaults with timeouts short enough for tests; the breaker stays out of the way
/// unless a test asks for it.
fn config(uri: &str) -> KeelConfig {
    let mut config = KeelConfig::development(uri).unwrap();
    for (path, value) in [
        ("heartbeat", "500ms"),
        ("timeouts.connect", "1s"),
        ("timeouts.server_selection", "2s"),
        ("timeouts.attempt", "3s"),
        ("timeouts.checkout_wait", "1s"),
        ("timeouts.deadline", "8s"),
        ("retry.initial_backoff", "10ms"),
        ("retry.max_backoff", "50ms"),
    ] {
        config.set(path, value).unwrap();
    }
    config.validate().unwrap();
    config
}

async fn keel(server: &TestServer) -> Keel {
    Keel::builder(config(&server.uri()))
        .without_breaker()
        .build()
        .await
        .unwrap()
}

/// `shop.items` through a Keel on `server`.
async fn items(server: &TestServer) -> Collection<Item> {
    keel(server).await.collection::<Item>("shop", "items")
}

/// Makes the server close the connection on the next `times` `command`s.
fn drop_next(server: &TestServer, command: &str, times: u32) {
    server
        .fail_command(FailCommand::new([command]).times(times).close_connection())
        .unwrap();
}

/// The stored item with `_id` `id`, which must exist.
async fn stored(items: &Collection<Item>, id: i64) -> Item {
    items.find_one(doc! { "_id": id }).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_round_trips() {
    let server = TestServer::start().await.unwrap();
    let items = items(&server).await;

    assert_eq!(
        items.insert_one(item(1, "apple", 3)).await.unwrap(),
        mongodb::bson::Bson::Int64(1)
    );
    let ids = items
        .insert_many([item(2, "pear", 5), item(3, "plum", 7)])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        items.find_one(doc! { "_id": 1 }).await.unwrap(),
        Some(item(1, "apple", 3))
    );
    assert_eq!(items.find(doc! {}).await.unwrap().len(), 3);
    assert_eq!(
        items
            .count_documents(doc! { "qty": { "$gte": 5 } })
            .await
            .unwrap(),
        2
    );

    let updated = items
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "qty": 4 } })
        .await
        .unwrap();
    assert_eq!((updated.matched_count, updated.modified_count), (1, 1));
    let many = items
        .update_many(doc! {}, doc! { "$inc": { "qty": 1 } })
        .await
        .unwrap();
    assert_eq!(many.modified_count, 3);
    let replaced = items
        .replace_one(doc! { "_id": 2 }, item(2, "pear", 50))
        .await
        .unwrap();
    assert_eq!(replaced.modified_count, 1);
    let before = items
        .find_one_and_update(doc! { "_id": 3 }, doc! { "$set": { "name": "prune" } })
        .await
        .unwrap();
    assert_eq!(before, Some(item(3, "plum", 8)));

    let totals = items
        .aggregate(vec![
            doc! { "$group": { "_id": null, "total": { "$sum": "$qty" } } },
        ])
        .await
        .unwrap();
    assert_eq!(totals[0].get_i64("total").unwrap(), 5 + 50 + 8);

    assert_eq!(
        items
            .delete_one(doc! { "_id": 1 })
            .await
            .unwrap()
            .deleted_count,
        1
    );
    assert_eq!(items.delete_many(doc! {}).await.unwrap().deleted_count, 2);
    assert_eq!(items.count_documents(doc! {}).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_without_id_gets_one_chosen_before_sending() {
    let server = TestServer::start().await.unwrap();
    let keel = keel(&server).await;
    let docs = keel.collection::<Document>("shop", "notes");
    let id = docs.insert_one(doc! { "text": "hi" }).await.unwrap();
    assert!(
        id.as_object_id().is_some(),
        "Keel chooses an ObjectId: {id:?}"
    );
    let stored = docs.find_one(doc! { "_id": id }).await.unwrap().unwrap();
    assert_eq!(stored.get_str("text").unwrap(), "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_dropped_mid_call_is_retried_and_applied_once() {
    let server = TestServer::start().await.unwrap();
    let items = items(&server).await;
    drop_next(&server, "insert", 2);

    items.insert_one(item(7, "fig", 1)).await.unwrap();

    assert_eq!(items.count_documents(doc! { "_id": 7 }).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_concern_error_is_reported_not_repeated_because_the_write_applied() {
    let server = TestServer::start().await.unwrap();
    let items = items(&server).await;
    // mongod applies the write, then reports that the write concern was not satisfied: a
    // repeat would not make it more durable, so the caller gets the error (design notes §4).
    server
        .fail_command(
            FailCommand::new(["insert"])
                .times(1)
                .error_labels(["RetryableWriteError"])
                .write_concern_error(doc! {
                    "code": 91,
                    "codeName": "ShutdownInProgress",
                    "errmsg": "Replication is being shut down",
                }),
        )
        .unwrap();

    let err = items
        .insert_many((10..15).map(|i| item(i, "batch", i)))
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::WriteConcern);
    assert_eq!(err.attempts(), Some(1), "{err}");
    assert_eq!(items.count_documents(doc! {}).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_is_retried_past_transient_network_errors() {
    let server = TestServer::start().await.unwrap();
    let items = items(&server).await;
    items.insert_one(item(1, "kiwi", 2)).await.unwrap();
    // Two drops: more than the driver's own single read retry, so Keel's layer must act.
    drop_next(&server, "find", 2);

    let found = items.find_one(doc! { "_id": 1 }).await.unwrap();

    assert_eq!(found, Some(item(1, "kiwi", 2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_idempotent_update_is_not_repeated_after_an_ambiguous_failure() {
    let server = TestServer::start().await.unwrap();
    let items = items(&server).await;
    items.insert_one(item(1, "lime", 0)).await.unwrap();
    drop_next(&server, "update", 1);

    let err = items
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "qty": 1 } })
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::Network);
    assert_eq!(err.attempts(), Some(1), "{err}");
    // The same update with $set is idempotent and goes through after the same fault.
    drop_next(&server, "update", 1);
    items
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "qty": 9 } })
        .await
        .unwrap();
    assert_eq!(stored(&items, 1).await.qty, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_key_is_the_callers_problem_and_never_retried() {
    let server = TestServer::start().await.unwrap();
    let items = items(&server).await;
    items.insert_one(item(1, "date", 1)).await.unwrap();

    let err = items.insert_one(item(1, "other", 2)).await.unwrap_err();

    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert!(err.is_duplicate_key());
    assert_eq!(
        stored(&items, 1).await.name,
        "date",
        "the existing document is untouched"
    );
    assert!(!err.user_message().contains("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_costs_a_caller_no_more_than_its_deadline() {
    let server = TestServer::start().await.unwrap();
    let keel = keel(&server).await;
    server.pause();

    let op = Operation::read("admin.ping", |client: mongodb::Client| async move {
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
    })
    .with_timeout(Duration::from_millis(800));
    let outcome = tokio::time::timeout(Duration::from_secs(10), keel.run(op))
        .await
        .expect("the operation's deadline must end the call");

    let err = outcome.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::DeadlineExceeded | ErrorKind::AttemptTimeout
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Timeout);
    server.resume();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_takes_any_operation() {
    let server = TestServer::start().await.unwrap();
    let keel = keel(&server).await;
    let names = keel
        .run(Operation::read(
            "admin.list_databases",
            |client: mongodb::Client| async move { client.list_database_names().await },
        ))
        .await
        .unwrap();
    assert!(names.iter().all(|n| !n.is_empty()));
    let report = keel.shutdown().await;
    assert_eq!(report.abandoned, 0, "{report:?}");
}
