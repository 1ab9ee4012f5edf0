//! Network faults through the fault proxy: with latency, after connection resets and into a
//! black hole, calls retry within their deadline or fail with the right class, never hang.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_core::{ErrorClass, Operation};
use keel_integration::{Deployment, PATIENCE, find_one_fails, heal_black_hole, test_config};
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

async fn keel_through_proxy(
    deployment: &Deployment,
) -> (
    keel_testkit::FaultProxy,
    Keel,
    mongokeel::Collection<Document>,
) {
    let (proxy, uri) = deployment.proxied().await;
    let keel = Keel::builder(test_config(&uri))
        .without_breaker()
        .build()
        .await
        .unwrap();
    let items = keel.collection::<Document>(&deployment.database("faults"), "items");
    (proxy, keel, items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_succeed_under_latency_and_jitter_within_their_deadline() {
    let deployment = Deployment::start().await;
    let (proxy, _keel, items) = keel_through_proxy(&deployment).await;
    proxy.set_latency(Duration::from_millis(20), Duration::from_millis(15));

    for id in 0..5_i64 {
        items.insert_one(doc! { "_id": id }).await.unwrap();
        assert!(items.find_one(doc! { "_id": id }).await.unwrap().is_some());
    }

    assert_eq!(items.count_documents(doc! {}).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_beyond_the_deadline_fails_as_a_timeout() {
    let deployment = Deployment::start().await;
    let (proxy, keel, items) = keel_through_proxy(&deployment).await;
    items.insert_one(doc! { "_id": 1 }).await.unwrap();
    proxy.set_latency(Duration::from_millis(700), Duration::ZERO);

    let db = items.database_name().to_owned();
    let op = Operation::read("faults.find_one", move |client: mongodb::Client| {
        let db = db.clone();
        async move {
            client
                .database(&db)
                .collection::<Document>("items")
                .find_one(doc! { "_id": 1 })
                .await
        }
    })
    .with_timeout(Duration::from_millis(300));
    let err = tokio::time::timeout(PATIENCE, keel.run(op))
        .await
        .expect("the deadline ends the call")
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_idempotent_writes_ride_out_connection_resets() {
    let deployment = Deployment::start().await;
    let (proxy, _keel, items) = keel_through_proxy(&deployment).await;

    // Each reset costs the driver a monitor check (it marks the server unknown): a few suffice.
    for id in 0..4_i64 {
        proxy.reset_all();
        items
            .insert_one(doc! { "_id": id, "v": id })
            .await
            .unwrap_or_else(|e| panic!("insert {id} after a reset: {e}"));
        proxy.reset_all();
        let found = items
            .find_one(doc! { "_id": id })
            .await
            .unwrap_or_else(|e| panic!("find {id} after a reset: {e}"));
        assert_eq!(found.unwrap().get_i64("v").unwrap(), id);
    }

    assert_eq!(
        items.count_documents(doc! {}).await.unwrap(),
        4,
        "every insert applied exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_fails_calls_at_their_deadline_and_recovery_follows() {
    let deployment = Deployment::start().await;
    let (proxy, keel, items) = keel_through_proxy(&deployment).await;
    items.insert_one(doc! { "_id": 1 }).await.unwrap();
    proxy.black_hole(true);

    let err = find_one_fails(
        &items,
        "a black hole must not hang a caller past its deadline",
    )
    .await;
    assert!(
        matches!(
            err.class(),
            // Unavailable: the heartbeat timed out meanwhile, so every member is known to be
            // down and the retry failed fast after the outage grace.
            ErrorClass::Timeout
                | ErrorClass::ServerSelection
                | ErrorClass::Network
                | ErrorClass::Unavailable
        ),
        "{err}"
    );

    heal_black_hole(&proxy, &keel, &items).await;
}
