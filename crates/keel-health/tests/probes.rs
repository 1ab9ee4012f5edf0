//! The Kubernetes probe handlers through axum, with a scripted target under paused time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use keel_health::{HealthConfig, HealthMonitor, HealthStatus};
use keel_pool_core::ConnectionState;
use serde_json::Value;
use support::{Fake, Ping, until};
use tower::ServiceExt;

async fn get(app: &axum::Router, path: &str) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test(start_paused = true)]
async fn probes_follow_health() {
    let fake = Fake::new();
    fake.set_ping(Ping::Hang);
    let mut config = HealthConfig::default();
    config.interval = Duration::from_secs(1);
    config.jitter = 0.0;
    let monitor = HealthMonitor::builder(fake.clone(), config)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    let app = keel_health::probes::router(health.clone());

    // Before any successful check: alive, not started, not ready.
    assert_eq!(get(&app, "/livez").await.0, StatusCode::OK);
    let (code, body) = get(&app, "/startupz").await;
    assert_eq!(
        (code, body["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("starting"))
    );
    assert_eq!(
        get(&app, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    fake.set_ping(Ping::Ok(Duration::from_millis(3)));
    until(&health, |r| r.status == HealthStatus::Healthy).await;
    assert_eq!(get(&app, "/startupz").await.0, StatusCode::OK);
    let (code, body) = get(&app, "/readyz").await;
    assert_eq!(
        (code, body["health"].as_str()),
        (StatusCode::OK, Some("healthy"))
    );

    // Degraded still serves.
    fake.set_state(ConnectionState::Degraded);
    until(&health, |r| r.status == HealthStatus::Degraded).await;
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);

    // Unhealthy: not ready, but alive and still started.
    fake.set_state(ConnectionState::Closed);
    until(&health, |r| r.status == HealthStatus::Unhealthy).await;
    let (code, body) = get(&app, "/readyz").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reasons"][0]["code"].as_str(), Some("connection"));
    assert_eq!(body["connection"].as_str(), Some("closed"));
    assert_eq!(get(&app, "/livez").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/startupz").await.0, StatusCode::OK);
}
