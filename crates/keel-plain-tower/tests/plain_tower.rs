//! The layer crates composed without the facade, against keel-testkit (or `KEEL_TEST_URI`):
//! retries below the breaker, the breaker failing fast, each counting in its own stats.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use keel_breaker::{Breaker, BreakerConfig};
use keel_core::{ErrorKind, Operation};
use keel_pool_core::ManagedClient;
use keel_retry::{RetryConfig, RetryLayer};
use mongodb::bson::{Document, doc};
use tower::ServiceExt;

async fn client() -> (Option<keel_testkit::TestServer>, ManagedClient) {
    let (server, uri) = match std::env::var("KEEL_TEST_URI")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(uri) => (None, uri),
        None => {
            let server = keel_testkit::TestServer::start().await.unwrap();
            let uri = server.uri();
            (Some(server), uri)
        }
    };
    // The driver's own options: this crate shows the layers without keel-config or the facade.
    let options = mongodb::options::ClientOptions::parse(&uri).await.unwrap();
    let client = ManagedClient::connect_with(options, keel_pool_core::ManagedSettings::default())
        .await
        .unwrap();
    (server, client)
}

#[tokio::test]
async fn retries_below_the_breaker_reach_the_database_and_count_in_their_own_stats() {
    let (_server, client) = client().await;
    let breaker = Breaker::new("plain", BreakerConfig::default()).unwrap();
    let retry = RetryLayer::mongodb(RetryConfig::default()).unwrap();

    // A real round trip, whose first attempt fails with a network error (retryable).
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&attempts);
    let insert = Operation::write("plain.items.insert_one", true, move |c: mongodb::Client| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
            }
            let items = c.database("plain").collection::<Document>("items");
            items.insert_one(doc! { "_id": 1 }).await.map(|_| ())
        }
    })
    .with_timeout(Duration::from_secs(10));
    keel_plain_tower::stack(client.clone(), &breaker, &retry)
        .oneshot(insert)
        .await
        .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let retries = retry.stats().snapshot();
    assert_eq!((retries.attempts, retries.retries), (2, 1));
    assert_eq!(breaker.stats().successes, 1, "the breaker saw one call");

    let count = Operation::read("plain.items.count", |c: mongodb::Client| async move {
        c.database("plain")
            .collection::<Document>("items")
            .count_documents(doc! {})
            .await
    });
    let stack = keel_plain_tower::stack(client.clone(), &breaker, &retry);
    assert_eq!(stack.oneshot(count).await.unwrap(), 1);
    client.shutdown().await;
}

#[tokio::test]
async fn an_open_breaker_fails_fast_without_running_the_operation() {
    let (_server, client) = client().await;
    let breaker = Breaker::new("plain", BreakerConfig::default()).unwrap();
    let retry = RetryLayer::mongodb(RetryConfig::default()).unwrap();
    breaker.force_open();
    let ran = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&ran);
    let read = Operation::read("plain.items.find", move |_c: mongodb::Client| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(0u32) }
    });
    let err = keel_plain_tower::stack(client.clone(), &breaker, &retry)
        .oneshot(read)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{err}");
    assert!(err.retry_after().is_some());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(breaker.stats().rejected, 1);
    client.shutdown().await;
}
