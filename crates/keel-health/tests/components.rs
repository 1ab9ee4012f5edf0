//! Components (health checks outside keel-health): a degraded component makes the report
//! `Degraded` with its reason, raises one alert through the sinks and clears it, never makes the
//! report `Unhealthy`, and a dropped reporter leaves no trace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_health::{
    AlertEvent, AlertKind, ChannelSink, HealthConfig, HealthHandle, HealthMonitor, HealthStatus,
    Reason, Transition,
};
use support::{Fake, Ping, next_alert, until};
use tokio::sync::mpsc;

/// A monitor whose checks pass, already `Healthy`, with its alerts on a channel.
async fn healthy_monitor() -> (HealthMonitor, HealthHandle, mpsc::Receiver<AlertEvent>) {
    let fake = Fake::new();
    fake.set_ping(Ping::Ok(Duration::from_millis(1)));
    let (sink, alerts) = ChannelSink::new(16);
    let monitor = HealthMonitor::builder(fake, HealthConfig::default())
        .sink(sink)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    until(&health, |r| r.status == HealthStatus::Healthy).await;
    (monitor, health, alerts)
}

#[tokio::test(start_paused = true)]
async fn a_degraded_component_degrades_the_report_and_alerts_once_until_it_recovers() {
    let (_monitor, health, mut alerts) = healthy_monitor().await;

    let reporter = health.component("change_stream:orders");
    let registered = until(&health, |r| r.components.len() == 1).await;
    assert_eq!(
        registered.status,
        HealthStatus::Healthy,
        "a new component is healthy"
    );

    reporter.degraded("the checkpoint is 42 min old, 70 % of the oplog window");
    let degraded = until(&health, |r| r.status == HealthStatus::Degraded).await;
    assert_eq!(
        degraded.reasons,
        vec![Reason::Component {
            name: "change_stream:orders".into(),
            detail: "the checkpoint is 42 min old, 70 % of the oplog window".into(),
        }]
    );
    let json = degraded.to_json();
    assert_eq!(json["components"][0]["status"], "degraded");
    assert_eq!(json["reasons"][0]["code"], "component");
    assert_eq!(
        json["reasons"][0]["message"],
        "change_stream:orders: the checkpoint is 42 min old, 70 % of the oplog window"
    );

    let raised = next_alert(&mut alerts).await;
    assert_eq!(raised.kind, AlertKind::ComponentDegraded);
    assert_eq!(raised.transition, Transition::Raised);
    assert_eq!(raised.component.as_deref(), Some("change_stream:orders"));
    assert_eq!(health.active_alerts().len(), 1);

    // A new sentence while degraded shows in the report but raises nothing new.
    reporter.degraded("the checkpoint is 50 min old, 83 % of the oplog window");
    until(&health, |r| {
        r.reasons
            .iter()
            .any(|reason| reason.to_string().contains("50 min"))
    })
    .await;

    reporter.healthy();
    until(&health, |r| r.status == HealthStatus::Healthy).await;
    let cleared = next_alert(&mut alerts).await;
    assert_eq!(
        (cleared.kind, cleared.transition),
        (AlertKind::ComponentDegraded, Transition::Cleared),
        "the second sentence raised no alert of its own"
    );
    assert!(health.active_alerts().is_empty());
}

#[tokio::test(start_paused = true)]
async fn components_never_make_the_report_unhealthy_and_a_dropped_one_is_gone() {
    let (_monitor, health, mut alerts) = healthy_monitor().await;

    let first = health.component("sync:notes");
    let second = health.component("backup:nightly");
    first.degraded("the queue has not drained for 10 min");
    second.degraded("the last scheduled backup failed");
    let both = until(&health, |r| r.reasons.len() == 2).await;
    assert_eq!(both.status, HealthStatus::Degraded);
    let names: Vec<_> = health.components().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["sync:notes", "backup:nightly"]);
    assert_eq!(
        health.active_alerts().len(),
        2,
        "one active alert per component"
    );
    for _ in 0..2 {
        assert_eq!(next_alert(&mut alerts).await.transition, Transition::Raised);
    }

    drop(first);
    drop(second);
    let none = until(&health, |r| r.components.is_empty()).await;
    assert_eq!(none.status, HealthStatus::Healthy);
    for _ in 0..2 {
        assert_eq!(
            next_alert(&mut alerts).await.transition,
            Transition::Cleared
        );
    }
    assert!(health.active_alerts().is_empty());
}
