//! The dashboard's HTTP side with a scripted target under paused time: the page, the snapshot
//! JSON and its history ring, the event stream, the token check, and the bind rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use futures_util::StreamExt;
use keel_core::{ErrorClass, Secret};
use keel_health::{
    DashboardError, HealthConfig, HealthHandle, HealthMonitor, HealthStatus, OperationStats,
    dashboard::{Dashboard, DashboardConfig},
};
use keel_pool_core::ConnectionState;
use serde_json::Value;
use support::{Fake, until};
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef-token";

fn monitor(fake: &Fake, stats: &OperationStats) -> HealthMonitor {
    let mut config = HealthConfig::default();
    config.interval = Duration::from_secs(1);
    config.jitter = 0.0;
    HealthMonitor::builder(fake.clone(), config)
        .operations(stats.clone())
        .spawn()
        .unwrap()
}

fn dashboard(health: HealthHandle, token: Option<&str>) -> Dashboard {
    let mut config = DashboardConfig::default();
    config.history = 5;
    config.token = token.map(|t| Secret::new(t.to_owned()));
    Dashboard::new(health, config)
}

/// A monitor on `fake` and `stats` past its first healthy check, and a dashboard without a
/// token on it; the monitor is returned to be kept alive for the test.
async fn healthy_dashboard(
    fake: &Fake,
    stats: &OperationStats,
) -> (HealthMonitor, HealthHandle, Dashboard) {
    let monitor = monitor(fake, stats);
    let health = monitor.handle();
    until(&health, |r| r.status == HealthStatus::Healthy).await;
    let dashboard = dashboard(health.clone(), None);
    (monitor, health, dashboard)
}

async fn get(app: &axum::Router, uri: &str, bearer: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 22).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn snapshot_has_live_values_history_and_error_classes() {
    let fake = Fake::new();
    let stats = OperationStats::default();
    let (_monitor, _health, dashboard) = healthy_dashboard(&fake, &stats).await;
    let app = dashboard.router();

    for _ in 0..3 {
        stats.record(Duration::from_millis(4), None);
    }
    stats.record(Duration::from_millis(9), Some(ErrorClass::Network));
    fake.set_in_use(3);
    // Eight samples at 1 s: the ring keeps the last five.
    tokio::time::sleep(Duration::from_millis(7500)).await;
    let (status, body) = get(&app, "/api/snapshot", None).await;
    assert_eq!(status, StatusCode::OK);
    let snap: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snap["health"]["status"], "healthy");
    assert_eq!(snap["now"]["connection"], "connected");
    assert_eq!(snap["now"]["pool_in_use"], 3);
    assert_eq!(snap["now"]["pool_max"], 10);
    assert_eq!(snap["operations"]["total"], 4);
    assert_eq!(snap["operations"]["errors_by_class"]["network"], 1);
    assert_eq!(snap["now"]["p99_ms"], 9.0);
    let history = snap["history"].as_array().unwrap();
    assert_eq!(history.len(), 5);
    let times: Vec<u64> = history.iter().map(|s| s["t"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    let (status, page) = get(&app, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"status\"") && page.contains("EventSource"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resource"
    );
}

#[tokio::test(start_paused = true)]
async fn the_event_stream_sends_updates() {
    let fake = Fake::new();
    let (_monitor, health, dashboard) = healthy_dashboard(&fake, &OperationStats::default()).await;
    let response = dashboard
        .router()
        .oneshot(Request::get("/api/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut frames = response.into_body().into_data_stream();
    let mut next_update = async || -> Value {
        loop {
            let frame = frames.next().await.unwrap().unwrap();
            let text = String::from_utf8(frame.to_vec()).unwrap();
            if let Some(data) = text.strip_prefix("event: update\ndata: ") {
                return serde_json::from_str(data.trim_end()).unwrap();
            }
        }
    };
    let first = next_update().await;
    assert_eq!(first["health"]["status"], "healthy");
    assert!(first.get("history").is_none(), "updates carry no history");
    fake.set_state(ConnectionState::Closed);
    until(&health, |r| r.status == HealthStatus::Unhealthy).await;
    let mut update = next_update().await;
    while update["health"]["status"] != "unhealthy" {
        update = next_update().await;
    }
    assert_eq!(update["now"]["connection"], "closed");
}

#[tokio::test(start_paused = true)]
async fn a_token_protects_every_route() {
    let fake = Fake::new();
    let monitor = monitor(&fake, &OperationStats::default());
    let app = dashboard(monitor.handle(), Some(TOKEN)).router();
    for path in ["/", "/api/snapshot", "/api/events"] {
        let (status, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(!body.contains(TOKEN));
        assert_eq!(
            get(&app, path, Some("wrong-token-0123456789")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        get(&app, "/api/snapshot", Some(TOKEN)).await.0,
        StatusCode::OK
    );
    let (status, _) = get(&app, &format!("/api/snapshot?token={TOKEN}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&app, "/?x=1&token=0123456789abcdef%2Dtoken", None).await;
    assert_eq!(status, StatusCode::OK, "percent-encoded token");
}

#[tokio::test(start_paused = true)]
async fn serving_elsewhere_than_loopback_needs_a_strong_token() {
    let fake = Fake::new();
    let monitor = monitor(&fake, &OperationStats::default());
    let mut config = DashboardConfig::default();
    config.bind = "0.0.0.0:0".parse().unwrap();
    let open = Dashboard::new(monitor.handle(), config.clone());
    let err = open.serve().await.unwrap_err();
    assert!(matches!(err, DashboardError::TokenRequired(_)), "{err}");
    config.token = Some(Secret::new("short".into()));
    let weak = Dashboard::new(monitor.handle(), config);
    assert!(matches!(
        weak.serve().await.unwrap_err(),
        DashboardError::WeakToken
    ));
    assert!(!format!("{weak:?}").contains("short"));
}

#[tokio::test]
async fn serves_on_loopback_by_default_rules() {
    let fake = Fake::new();
    let monitor = monitor(&fake, &OperationStats::default());
    let mut config = DashboardConfig::default();
    config.bind = "127.0.0.1:0".parse().unwrap();
    let serving = Dashboard::new(monitor.handle(), config)
        .serve()
        .await
        .unwrap();
    assert!(serving.addr().ip().is_loopback());
    assert_ne!(serving.addr().port(), 0);
    let mut stream = tokio::net::TcpStream::connect(serving.addr())
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /api/snapshot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"health\""));
    serving.shutdown();
}
