//! The `health` feature wired into the facade: the monitor follows the testkit server down and
//! back up, the gate refuses calls at once while it is unhealthy, and every call is counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_core::ErrorKind;
use keel_health::HealthStatus;
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};

const PATIENCE: Duration = Duration::from_secs(20);

fn config(uri: &str) -> KeelConfig {
    let mut config = KeelConfig::development(uri).unwrap();
    for (path, value) in [
        ("heartbeat", "500ms"),
        ("timeouts.connect", "1s"),
        ("timeouts.server_selection", "1s"),
        ("timeouts.attempt", "2s"),
        ("timeouts.checkout_wait", "1s"),
        ("timeouts.deadline", "4s"),
    ] {
        config.set(path, value).unwrap();
    }
    config.validate().unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_fails_fast_while_unhealthy_and_opens_when_healthy_again() {
    let server = TestServer::start().await.unwrap();
    let config = config(&server.uri());
    let mut health = config.health_config();
    health.interval = Duration::from_millis(200);
    health.check_timeout = Duration::from_millis(500);
    let keel = Keel::builder(config)
        .health_config(health)
        .build()
        .await
        .unwrap();
    let items = keel.collection::<Document>("app", "items");
    items.insert_one(doc! { "_id": 1 }).await.unwrap();
    keel.health()
        .wait_for(|s| s == HealthStatus::Healthy, PATIENCE)
        .await
        .expect("healthy once checks pass");

    server.stop().await;
    keel.health()
        .wait_for(|s| s == HealthStatus::Unhealthy, PATIENCE)
        .await
        .expect("the monitor sees the server go");
    let err = items.find_one(doc! { "_id": 1 }).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{err}");
    assert!(err.retry_after().is_some());

    server.restart().await.unwrap();
    keel.health()
        .wait_for(|s| s == HealthStatus::Healthy, PATIENCE)
        .await
        .expect("the monitor sees the server return");
    assert!(items.find_one(doc! { "_id": 1 }).await.unwrap().is_some());

    let stats = keel.operation_stats().snapshot();
    assert!(stats.total >= 3, "{stats:?}");
    assert!(stats.errors >= 1, "{stats:?}");
    keel.shutdown().await;
}
