//! End to end against a live keel-testkit server: stop the server → Unhealthy → alert →
//! automatic recovery (a pool-core reset) → restart → Healthy and the alert cleared; and the
//! health gate failing fast in front of `MongoService` during the outage. States are awaited,
//! never slept for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_core::{ErrorClass, Operation};
use keel_health::{
    AlertEvent, AlertKind, ChannelSink, HealthConfig, HealthGateLayer, HealthMonitor, HealthStatus,
    Reason, Transition,
};
use keel_pool_core::{ConnectionState, ManagedClient, ManagedSettings, MongoService};
use keel_testkit::TestServer;
use mongodb::{
    bson::{Document, doc},
    options::ClientOptions,
};
use tokio::sync::mpsc;
use tower::{ServiceBuilder, ServiceExt};

const PATIENCE: Duration = Duration::from_secs(20);

async fn connect(server: &TestServer) -> ManagedClient {
    let mut options = ClientOptions::parse(server.uri()).await.unwrap();
    options.server_selection_timeout = Some(Duration::from_millis(500));
    options.heartbeat_freq = Some(Duration::from_millis(500));
    options.connect_timeout = Some(Duration::from_millis(500));
    let mut settings = ManagedSettings::default();
    settings.reset_min_interval = Duration::from_millis(500);
    settings.reconnect_wait = Duration::from_millis(500);
    ManagedClient::connect_with(options, settings)
        .await
        .unwrap()
}

fn config() -> HealthConfig {
    let mut config = HealthConfig::default();
    config.interval = Duration::from_millis(200);
    config.check_timeout = Duration::from_secs(1);
    // A short window, so the error-rate and latency alerts the outage raises clear soon after.
    config.window = Duration::from_secs(2);
    config.recovery.after_failed_checks = 3;
    config.recovery.min_interval = Duration::from_secs(30);
    config
}

async fn alert_of(alerts: &mut mpsc::Receiver<AlertEvent>, kind: AlertKind) -> AlertEvent {
    loop {
        let event = tokio::time::timeout(PATIENCE, alerts.recv())
            .await
            .expect("no alert came")
            .unwrap();
        if event.kind == kind {
            return event;
        }
    }
}

fn ping() -> Operation<Document> {
    Operation::command("admin.ping", true, |c: mongodb::Client| async move {
        c.database("admin").run_command(doc! { "ping": 1 }).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stop_unhealthy_alert_recovery_healthy() {
    let server = TestServer::start().await.unwrap();
    let client = connect(&server).await;
    let (sink, mut alerts) = ChannelSink::new(64);
    let monitor = HealthMonitor::builder(client.clone(), config())
        .sink(sink)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    let gated = ServiceBuilder::new()
        .layer(HealthGateLayer::new(&health))
        .service(MongoService::new(client.clone()));

    let report = health
        .wait_for(|s| s == HealthStatus::Healthy, PATIENCE)
        .await
        .expect("never healthy");
    assert!(report.started);
    gated.clone().oneshot(ping()).await.unwrap();

    server.stop().await;
    let report = health
        .wait_for(|s| s == HealthStatus::Unhealthy, PATIENCE)
        .await
        .expect("never unhealthy");
    assert!(
        report.reasons.iter().any(|r| matches!(
            r,
            Reason::Connection(ConnectionState::Reconnecting) | Reason::ChecksFailing { .. }
        )),
        "{:?}",
        report.reasons
    );
    // The gate fails fast instead of letting the request wait for the driver.
    let start = std::time::Instant::now();
    let refused = gated.clone().oneshot(ping()).await.unwrap_err();
    assert_eq!(refused.class(), ErrorClass::Unavailable);
    assert!(start.elapsed() < Duration::from_millis(100));

    let raised = alert_of(&mut alerts, AlertKind::ChecksFailing).await;
    assert_eq!(raised.transition, Transition::Raised);

    // Failed checks with no driver progress: the monitor resets the client.
    let mut reports = health.subscribe();
    tokio::time::timeout(PATIENCE, reports.wait_for(|r| r.recoveries >= 1))
        .await
        .expect("no recovery")
        .unwrap();

    server.restart().await.unwrap();
    health
        .wait_for(|s| s == HealthStatus::Healthy, PATIENCE)
        .await
        .expect("never healthy again");
    let cleared = alert_of(&mut alerts, AlertKind::ChecksFailing).await;
    assert_eq!(cleared.transition, Transition::Cleared);
    assert_eq!(client.state(), ConnectionState::Connected);
    assert_eq!(
        health.report().recoveries,
        1,
        "one reset, then the minimum interval"
    );
    gated.clone().oneshot(ping()).await.unwrap();

    monitor.shutdown().await;
    client.shutdown().await;
}
