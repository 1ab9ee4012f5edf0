//! A dead deployment versus a failover: the first call of a known outage fails within
//! `timeouts.outage_grace` (not after server selection or the deadline), calls made while a
//! replica set steps down all succeed, and a black hole is seen as an outage once a heartbeat
//! times out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use keel_core::{ErrorClass, ErrorKind};
use keel_integration::{Deployment, PATIENCE, skip_against_real, test_config};
use keel_pool_core::ConnectionState;
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

/// A bound that only a fail-fast meets: the configuration below would make a waiting call take
/// 10 s (server selection) or more. Generous against a loaded machine; the exact figure is the
/// `outage_latency` bench's.
const FAST: Duration = Duration::from_secs(5);

/// The integration tests' configuration with long waits, so that only the outage grace can end
/// a call quickly.
fn patient_config(uri: &str) -> keel_config::KeelConfig {
    let mut config = test_config(uri);
    for (path, value) in [
        ("timeouts.server_selection", "10s"),
        ("timeouts.attempt", "15s"),
        ("timeouts.deadline", "30s"),
        ("timeouts.outage_grace", "1s"),
        ("timeouts.election_wait", "12s"),
    ] {
        config.set(path, value).unwrap();
    }
    config.validate().unwrap();
    config
}

async fn wait_for_state(keel: &Keel, wanted: ConnectionState) -> Duration {
    let started = Instant::now();
    let mut states = keel.subscribe();
    tokio::time::timeout(PATIENCE, states.wait_for(|s| *s == wanted))
        .await
        .unwrap_or_else(|_| panic!("state never became {wanted}, is {}", keel.state()))
        .unwrap();
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_of_an_outage_fails_within_the_grace() {
    let deployment = Deployment::start().await;
    // The testkit server is stopped for real; a real deployment is cut off at the proxy, which
    // a client cannot tell from a stopped server (connections refused and reset).
    let (proxy, uri) = deployment.proxied().await;
    let keel = Keel::builder(patient_config(&uri)).build().await.unwrap();
    let items = keel.collection::<Document>(&deployment.database("fail_fast"), "items");
    items.insert_one(doc! { "_id": 1 }).await.unwrap();

    match deployment.testkit("stop the server (cut off at the proxy instead)") {
        Some(server) => server.stop().await,
        None => {
            proxy.refuse_new(true).await.unwrap();
            proxy.reset_all();
        }
    }
    // The driver's monitor (heartbeat 500ms) sees the refused check. A call already handed to
    // the driver before that is not cut short (it ends at the driver's server selection, here
    // 10 s): the grace applies to calls Keel admits once the outage is known.
    let detected = wait_for_state(&keel, ConnectionState::Unreachable).await;
    eprintln!("stopped server seen as unreachable after {detected:?}");
    let started = Instant::now();
    let err = tokio::time::timeout(PATIENCE, items.find_one(doc! { "_id": 1 }))
        .await
        .expect("the first call of an outage must not hang")
        .unwrap_err();
    let took = started.elapsed();
    eprintln!("first call of the outage failed after {took:?}: {err}");
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.retry_after().is_some(), "{err}");
    assert!(took < FAST, "failed after {took:?}, not within the grace");
    assert_eq!(keel.state(), ConnectionState::Unreachable);
    // The next calls of the same outage fail at once, before any breaker has opened.
    let next = items.find_one(doc! { "_id": 1 }).await.unwrap_err();
    assert_eq!(next.class(), ErrorClass::Unavailable, "{next}");

    match deployment.testkit("restart the server") {
        Some(server) => server.restart().await.unwrap(),
        None => proxy.refuse_new(false).await.unwrap(),
    }
    tokio::time::timeout(PATIENCE, keel.ready())
        .await
        .expect("the client reconnects by itself")
        .unwrap();
    assert!(items.find_one(doc! { "_id": 1 }).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_during_a_step_down_all_succeed() {
    if skip_against_real("step a replica set down on request") {
        return;
    }
    let rs = TestServer::replica_set("rs0", 3).await.unwrap();
    let keel = Keel::builder(patient_config(&rs.uri()))
        .build()
        .await
        .unwrap();
    let items = keel.collection::<Document>("keel_it_step_down", "items");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4_i64)
        .map(|worker| {
            let (items, stop, done) = (items.clone(), Arc::clone(&stop), Arc::clone(&done));
            tokio::spawn(async move {
                let mut acknowledged = 0_u64;
                let mut next = 0_i64;
                while !stop.load(Ordering::Relaxed) {
                    let id = worker * 1_000_000 + next;
                    next += 1;
                    items
                        .insert_one(doc! { "_id": id, "worker": worker })
                        .await
                        .unwrap_or_else(|e| panic!("insert {id} during a step-down: {e}"));
                    acknowledged += 1;
                    let found = items
                        .find_one(doc! { "_id": id })
                        .await
                        .unwrap_or_else(|e| panic!("find {id} during a step-down: {e}"));
                    assert!(found.is_some(), "acknowledged insert {id} not found");
                    done.fetch_add(1, Ordering::Relaxed);
                }
                acknowledged
            })
        })
        .collect();

    let progress = |at_least: u64| {
        let done = Arc::clone(&done);
        async move {
            tokio::time::timeout(PATIENCE, async {
                while done.load(Ordering::Relaxed) < at_least {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("calls stopped making progress before {at_least}"));
        }
    };
    progress(20).await;
    for round in 0..3 {
        let new_primary = rs.step_down().unwrap();
        assert_eq!(rs.primary(), Some(new_primary), "round {round}");
        let seen = done.load(Ordering::Relaxed);
        progress(seen + 40).await;
    }
    rs.elect(0).unwrap();
    let seen = done.load(Ordering::Relaxed);
    progress(seen + 40).await;
    stop.store(true, Ordering::Relaxed);

    let mut acknowledged = 0;
    for worker in workers {
        acknowledged += worker.await.expect("no call failed during the step-downs");
    }
    assert_eq!(
        items.count_documents(doc! {}).await.unwrap(),
        acknowledged,
        "every acknowledged insert stored exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_is_seen_as_an_outage_when_a_heartbeat_times_out() {
    let deployment = Deployment::start().await;
    let (proxy, uri) = deployment.proxied().await;
    // heartbeat 500ms and connect timeout 1s (test_config): a check sent into the black hole
    // fails after 1 s, and one is sent at most 500 ms after the previous.
    let keel = Keel::builder(patient_config(&uri)).build().await.unwrap();
    let items = keel.collection::<Document>(&deployment.database("black_hole"), "items");
    items.insert_one(doc! { "_id": 1 }).await.unwrap();

    proxy.black_hole(true);
    let detected = wait_for_state(&keel, ConnectionState::Unreachable).await;
    eprintln!("black hole seen as unreachable after {detected:?} (heartbeat 500ms + connect 1s)");
    let started = Instant::now();
    let err = tokio::time::timeout(PATIENCE, items.find_one(doc! { "_id": 1 }))
        .await
        .expect("a call into a known black hole must not hang")
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());

    proxy.black_hole(false);
    proxy.reset_all();
    tokio::time::timeout(PATIENCE, keel.ready())
        .await
        .expect("the client reconnects once the network is back")
        .unwrap();
    assert!(items.find_one(doc! { "_id": 1 }).await.unwrap().is_some());
}
