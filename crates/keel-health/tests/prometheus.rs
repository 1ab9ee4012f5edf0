//! The Prometheus output: operation metrics from `OperationMetricsLayer`, health metrics from a
//! running monitor, descriptions, Keel's buckets, and the `/metrics` route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use keel_core::{Error, Operation};
use keel_health::{
    HealthConfig, HealthMonitor, OperationMetricsLayer, OperationStats,
    metrics::{describe_all, prometheus_builder},
};
use support::{Fake, until};
use tower::{ServiceBuilder, ServiceExt, service_fn};

fn find(name: &'static str) -> Operation<u32> {
    Operation::read(name, |_client: mongodb::Client| async { Ok(1u32) })
}

#[tokio::test(start_paused = true)]
async fn prometheus_output_has_operation_and_health_metrics() {
    let recorder = prometheus_builder().unwrap().build_recorder();
    let handle = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);
    describe_all();

    // Operations: two successes of 3 ms, one failure of 40 ms.
    let stats = OperationStats::default();
    let service = ServiceBuilder::new()
        .layer(OperationMetricsLayer::new().with_stats(stats.clone()))
        .service(service_fn(|op: Operation<u32>| async move {
            if op.name() == "users.find" {
                tokio::time::sleep(Duration::from_millis(3)).await;
                Ok(5)
            } else {
                tokio::time::sleep(Duration::from_millis(40)).await;
                Err(Error::unreachable(Duration::from_secs(1)))
            }
        }));
    service.clone().oneshot(find("users.find")).await.unwrap();
    service.clone().oneshot(find("users.find")).await.unwrap();
    service
        .clone()
        .oneshot(find("orders.insert"))
        .await
        .unwrap_err();
    assert_eq!(stats.snapshot().errors, 1);

    // Health: a few checks.
    let mut config = HealthConfig::default();
    config.interval = Duration::from_secs(1);
    let monitor = HealthMonitor::builder(Fake::new(), config).spawn().unwrap();
    until(&monitor.handle(), |r| r.checks >= 3).await;

    // A refusal by the health gate.
    let mut unhealthy =
        keel_health::HealthReport::starting(keel_pool_core::ConnectionState::Reconnecting, None);
    unhealthy.status = keel_health::HealthStatus::Unhealthy;
    let (_tx, rx) = tokio::sync::watch::channel(unhealthy);
    let gated = ServiceBuilder::new()
        .layer(keel_health::HealthGateLayer::from_receiver(
            rx,
            Duration::from_secs(1),
        ))
        .service(service.clone());
    gated.oneshot(find("users.find")).await.unwrap_err();

    let app = keel_health::metrics_router(handle);
    let response = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(
        to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();

    for line in [
        "# TYPE keel_operations_total counter",
        "# HELP keel_operations_total operations finished (OperationMetricsLayer)",
        "keel_operations_total{op=\"users.find\",outcome=\"success\"} 2",
        "keel_operations_total{op=\"orders.insert\",outcome=\"error\"} 1",
        "keel_operation_errors_total{op=\"orders.insert\",class=\"server_selection\"} 1",
        "# TYPE keel_operation_duration_seconds histogram",
        "keel_operation_duration_seconds_bucket{op=\"users.find\",le=\"0.0025\"} 0",
        "keel_operation_duration_seconds_bucket{op=\"users.find\",le=\"0.005\"} 2",
        "keel_operation_duration_seconds_bucket{op=\"orders.insert\",le=\"0.05\"} 1",
        "keel_operation_duration_seconds_count{op=\"users.find\"} 2",
        "keel_health_status 0",
        "keel_health_checks_total{outcome=\"ok\"} 3",
        "# TYPE keel_health_check_duration_seconds histogram",
        "keel_health_check_duration_seconds_count 3",
        "keel_health_alert_active{alert=\"checks_failing\"} 0",
        "keel_health_alert_active{alert=\"latency_high\"} 0",
        "keel_health_gate_rejections_total{reason=\"unhealthy\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{text}"
        );
    }
    // Labels come from closed sets: every `op` value is one of the two names used.
    for line in text.lines().filter(|l| l.contains("op=\"")) {
        assert!(
            line.contains("op=\"users.find\"") || line.contains("op=\"orders.insert\""),
            "{line}"
        );
    }
}
