//! A full outage: while the database is unreachable, calls fail fast (pool-core's outage grace,
//! or the open breaker) with a `Retry-After` hint instead of each waiting out server selection;
//! when it returns, the client reconnects by itself and the next call succeeds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use keel_core::{Error, ErrorClass, ErrorKind};
use keel_integration::{Deployment, PATIENCE, reconnects_and_finds_one, test_config};
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

/// A call refused without trying: no member reachable (pool-core) or an open circuit.
fn failed_fast(err: &Error) -> bool {
    err.class() == ErrorClass::Unavailable
        && matches!(err.kind(), ErrorKind::Unreachable | ErrorKind::CircuitOpen)
        && err.retry_after().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_fast_and_the_first_call_after_it_succeeds() {
    let deployment = Deployment::start().await;
    // The testkit server is stopped for real; a real deployment is cut off at the proxy,
    // which a client cannot tell from a stopped server (connections refused and reset).
    let (proxy, uri) = deployment.proxied().await;
    // A breaker that stays open for the whole test: what ends the outage here is the client
    // seeing the database again (the breaker is closed on reconnection), not the open wait.
    let mut config = test_config(&uri);
    config.set("breaker.open_wait", "60s").unwrap();
    config.set("breaker.max_open_wait", "60s").unwrap();
    config.validate().unwrap();
    let keel = Keel::builder(config).build().await.unwrap();
    let items = keel.collection::<Document>(&deployment.database("outage"), "items");
    items.insert_one(doc! { "_id": 1 }).await.unwrap();

    match deployment.testkit("stop the server (cut off at the proxy instead)") {
        Some(server) => server.stop().await,
        None => {
            proxy.refuse_new(true).await.unwrap();
            proxy.reset_all();
        }
    }

    // A service under load: the first wave of callers meets the dead connections, or waits at
    // most the outage grace once every member is known to be down.
    let wave: Vec<_> = (0..8)
        .map(|_| {
            let items = items.clone();
            tokio::spawn(async move { items.find_one(doc! { "_id": 1 }).await })
        })
        .collect();
    let wave = tokio::time::timeout(PATIENCE, futures_util::future::join_all(wave))
        .await
        .expect("no caller waits past its deadline");
    for outcome in wave {
        let err = outcome.unwrap().unwrap_err();
        assert!(
            err.class().is_infrastructure() || failed_fast(&err),
            "{err}"
        );
    }
    // From then on every call is refused without touching the network, with a hint of when
    // to come back.
    let opened = items.find_one(doc! { "_id": 1 }).await.unwrap_err();
    assert!(failed_fast(&opened), "{opened}");
    let started = Instant::now();
    for _ in 0..100 {
        let err = items.find_one(doc! { "_id": 1 }).await.unwrap_err();
        assert!(failed_fast(&err), "{err}");
    }
    eprintln!(
        "100 calls failed fast in {:?} while the database was down",
        started.elapsed()
    );

    let back = Instant::now();
    match deployment.testkit("restart the server") {
        Some(server) => server.restart().await.unwrap(),
        None => proxy.refuse_new(false).await.unwrap(),
    }
    reconnects_and_finds_one(
        &keel,
        &items,
        "the client reconnects, and the breaker and health let calls through",
    )
    .await;
    eprintln!(
        "first successful call {:?} after the database returned",
        back.elapsed()
    );
}
