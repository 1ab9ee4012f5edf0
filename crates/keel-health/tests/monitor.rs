//! The health monitor under paused time with a scripted target: interval and timing, status
//! rules, alerts with hysteresis (no flapping), breaker and operations inputs, and recovery.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_breaker::{Breaker, BreakerConfig};
use keel_core::ErrorClass;
use keel_health::{
    AlertEvent, AlertKind, ChannelSink, HealthConfig, HealthMonitor, HealthStatus, OperationStats,
    Reason, Threshold, Transition,
};
use keel_pool_core::ConnectionState;
use support::{Fake, Ping, next_alert, until};
use tokio::{sync::mpsc, time::Instant};

fn config() -> HealthConfig {
    let mut config = HealthConfig::default();
    config.interval = Duration::from_secs(1);
    config.jitter = 0.0;
    config.window = Duration::from_secs(10);
    config.min_samples = 3;
    config.recovery.after_failed_checks = 5;
    config.recovery.min_interval = Duration::from_secs(20);
    config
}

/// The next event of `kind`; others on the way may only be the error-rate alert, which an
/// outage raises too.
async fn next_of(alerts: &mut mpsc::Receiver<AlertEvent>, kind: AlertKind) -> AlertEvent {
    loop {
        let event = next_alert(alerts).await;
        if event.kind == kind {
            return event;
        }
        assert_eq!(event.kind, AlertKind::ErrorRateHigh, "unexpected {event:?}");
    }
}

/// Runs checks until `n` more have completed.
async fn checks(health: &keel_health::HealthHandle, n: u64) {
    let target = health.report().checks + n;
    until(health, |r| r.checks >= target).await;
}

/// A monitor on `fake` with the test config, past its first healthy check; the monitor is
/// returned to be kept alive for the test.
async fn healthy_monitor(fake: &Fake) -> (HealthMonitor, keel_health::HealthHandle) {
    let monitor = HealthMonitor::builder(fake.clone(), config())
        .spawn()
        .unwrap();
    let health = monitor.handle();
    until(&health, |r| r.status == HealthStatus::Healthy).await;
    (monitor, health)
}

/// One check per level, with the pool's in-use count set to that level first.
async fn checks_at_in_use(
    fake: &Fake,
    health: &keel_health::HealthHandle,
    levels: impl IntoIterator<Item = u64>,
) {
    for in_use in levels {
        fake.set_in_use(in_use);
        checks(health, 1).await;
    }
}

/// The next alert, which must be `kind` going through `transition`.
async fn expect_alert(
    alerts: &mut mpsc::Receiver<AlertEvent>,
    kind: AlertKind,
    transition: Transition,
) -> AlertEvent {
    let event = next_alert(alerts).await;
    assert_eq!(
        (event.kind, event.transition),
        (kind, transition),
        "{event:?}"
    );
    event
}

#[tokio::test(start_paused = true)]
async fn checks_run_on_the_interval_and_measure_latency() {
    let fake = Fake::new();
    fake.set_ping(Ping::Ok(Duration::from_millis(10)));
    let start = Instant::now();
    let monitor = HealthMonitor::builder(fake, config()).spawn().unwrap();
    let health = monitor.handle();
    let first = until(&health, |r| r.checks == 1).await;
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(10),
        "the first check runs at once"
    );
    assert_eq!(first.status, HealthStatus::Healthy);
    assert!(first.started && first.reasons.is_empty());
    assert_eq!(first.last_check.unwrap().latency, Duration::from_millis(10));
    until(&health, |r| r.checks == 3).await;
    // Checks start every interval, measured from the previous start.
    assert_eq!(start.elapsed(), Duration::from_millis(2010));
    let report = health.report();
    assert_eq!(report.latency_p99, Some(Duration::from_millis(10)));
    assert_eq!(report.error_rate, Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn before_the_first_check_the_status_is_not_started() {
    let fake = Fake::new();
    fake.set_ping(Ping::Hang);
    let monitor = HealthMonitor::builder(fake, config()).spawn().unwrap();
    let report = monitor.handle().report();
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(report.reasons, vec![Reason::NotStarted]);
    assert!(!report.started);
}

#[tokio::test(start_paused = true)]
async fn a_hung_ping_fails_at_the_check_timeout() {
    let fake = Fake::new();
    fake.set_ping(Ping::Hang);
    let mut config = config();
    config.check_timeout = Duration::from_millis(700);
    let start = Instant::now();
    let monitor = HealthMonitor::builder(fake, config).spawn().unwrap();
    let report = until(&monitor.handle(), |r| r.checks == 1).await;
    assert_eq!(start.elapsed(), Duration::from_millis(700));
    assert_eq!(report.last_check.unwrap().error, Some(ErrorClass::Timeout));
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(
        report.reasons,
        vec![Reason::CheckFailed(ErrorClass::Timeout)]
    );
}

#[tokio::test(start_paused = true)]
async fn outage_goes_unhealthy_alerts_recovers_and_clears() {
    let fake = Fake::new();
    let (sink, mut alerts) = ChannelSink::new(16);
    let monitor = HealthMonitor::builder(fake.clone(), config())
        .sink(sink)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    until(&health, |r| r.status == HealthStatus::Healthy).await;

    // The server goes away: the driver notices (Reconnecting) and pings fail.
    fake.set_ping(Ping::Fail);
    fake.set_state(ConnectionState::Reconnecting);
    let report = until(&health, |r| r.status == HealthStatus::Unhealthy).await;
    assert!(
        report
            .reasons
            .contains(&Reason::Connection(ConnectionState::Reconnecting))
    );

    // Three failed checks raise `checks_failing`.
    let raised = next_of(&mut alerts, AlertKind::ChecksFailing).await;
    assert_eq!(raised.transition, Transition::Raised);
    assert_eq!(raised.value, "3");
    assert_eq!(health.report().consecutive_failures, 3);
    assert_eq!(health.active_alerts().len(), 1);

    // The fifth failure with no progress resets the client; no second reset inside 20 s.
    until(&health, |r| r.consecutive_failures == 5).await;
    assert_eq!(fake.resets(), 1);
    assert_eq!(health.report().recoveries, 1);
    checks(&health, 19).await;
    assert_eq!(fake.resets(), 1, "a reset within the minimum interval");
    checks(&health, 1).await;
    assert_eq!(fake.resets(), 2, "the minimum interval has passed");

    // The server is back: two good checks clear the alert and health returns.
    fake.set_ping(Ping::Ok(Duration::from_millis(5)));
    fake.set_state(ConnectionState::Connected);
    let cleared = next_of(&mut alerts, AlertKind::ChecksFailing).await;
    assert_eq!(cleared.transition, Transition::Cleared);
    // The error-rate alert clears once the failures have left the 10 s window.
    let cleared = next_of(&mut alerts, AlertKind::ErrorRateHigh).await;
    assert_eq!(cleared.transition, Transition::Cleared);
    let report = until(&health, |r| r.status == HealthStatus::Healthy).await;
    assert_eq!(report.consecutive_failures, 0);
    assert!(health.active_alerts().is_empty());
    let recent = health.recent_alerts();
    assert_eq!(recent.len(), 4, "{recent:?}");
    assert_eq!(recent[0].kind, AlertKind::ErrorRateHigh);
    assert!(alerts.try_recv().is_err(), "no alert after recovery");
}

#[tokio::test(start_paused = true)]
async fn no_reset_while_the_driver_shows_progress() {
    let fake = Fake::new();
    let monitor = HealthMonitor::builder(fake.clone(), config())
        .spawn()
        .unwrap();
    let health = monitor.handle();
    fake.set_ping(Ping::Fail);
    // Still Connected: the driver thinks the server is fine.
    until(&health, |r| r.consecutive_failures >= 8).await;
    assert_eq!(fake.resets(), 0);
    // Reconnecting, but checkouts keep succeeding: progress.
    fake.set_state(ConnectionState::Reconnecting);
    for _ in 0..8 {
        fake.checkout();
        checks(&health, 1).await;
    }
    assert_eq!(fake.resets(), 0);
    // No progress any more: five checks later, a reset.
    checks(&health, 5).await;
    assert_eq!(fake.resets(), 1);
}

#[tokio::test(start_paused = true)]
async fn refused_resets_are_not_counted_as_recoveries() {
    let fake = Fake::new();
    fake.refuse_resets(true);
    fake.set_ping(Ping::Fail);
    fake.set_state(ConnectionState::Reconnecting);
    let monitor = HealthMonitor::builder(fake.clone(), config())
        .spawn()
        .unwrap();
    let report = until(&monitor.handle(), |r| r.checks >= 6).await;
    assert_eq!((fake.resets(), report.recoveries), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn disabled_recovery_never_resets() {
    let fake = Fake::new();
    fake.set_ping(Ping::Fail);
    fake.set_state(ConnectionState::Reconnecting);
    let mut config = config();
    config.recovery.enabled = false;
    let monitor = HealthMonitor::builder(fake.clone(), config)
        .spawn()
        .unwrap();
    until(&monitor.handle(), |r| r.checks >= 30).await;
    assert_eq!(fake.resets(), 0);
}

#[tokio::test(start_paused = true)]
async fn pool_saturation_alert_does_not_flap() {
    let fake = Fake::new();
    let (sink, mut alerts) = ChannelSink::new(64);
    let mut config = config();
    config.pool_saturation = Threshold::new(0.9, 0.7).counts(3, 3);
    config.pool_max_size = 10;
    let monitor = HealthMonitor::builder(fake.clone(), config)
        .sink(sink)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    checks(&health, 1).await;
    // Hovering around the raise level: never three in a row above it.
    checks_at_in_use(&fake, &health, [9, 9, 6, 9, 9, 8, 9, 9, 6, 9, 9, 6]).await;
    assert!(alerts.try_recv().is_err(), "raised while hovering");
    checks_at_in_use(&fake, &health, [10; 3]).await;
    let raised = expect_alert(&mut alerts, AlertKind::PoolSaturated, Transition::Raised).await;
    assert_eq!(raised.value, "100.0%");
    let report = health.report();
    assert_eq!(report.status, HealthStatus::Degraded);
    assert!(matches!(report.reasons[..], [Reason::PoolSaturated { .. }]));
    // Between the levels, or dipping below the clear level only now and then: stays raised.
    let between = [8, 6, 8, 6, 6, 8, 7, 8, 6, 6, 9, 6, 6, 8];
    checks_at_in_use(&fake, &health, between).await;
    assert!(alerts.try_recv().is_err(), "flapped");
    checks_at_in_use(&fake, &health, [2; 3]).await;
    let cleared = expect_alert(&mut alerts, AlertKind::PoolSaturated, Transition::Cleared).await;
    assert_eq!(cleared.threshold, "70.0%");
    assert_eq!(health.status(), HealthStatus::Healthy);
}

#[tokio::test(start_paused = true)]
async fn slow_checks_raise_the_latency_alert_and_fast_ones_clear_it() {
    let fake = Fake::new();
    let (sink, mut alerts) = ChannelSink::new(16);
    let mut config = config();
    config.latency = Threshold::new(Duration::from_millis(500), Duration::from_millis(250));
    let monitor = HealthMonitor::builder(fake.clone(), config)
        .sink(sink)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    fake.set_ping(Ping::Ok(Duration::from_millis(800)));
    let raised = expect_alert(&mut alerts, AlertKind::LatencyHigh, Transition::Raised).await;
    assert_eq!(raised.value, "800.0ms");
    // min_samples (3) then raise_after (3): the fifth check raises.
    assert_eq!(health.report().checks, 5);
    assert_eq!(health.status(), HealthStatus::Degraded);
    fake.set_ping(Ping::Ok(Duration::from_millis(5)));
    let cleared = next_alert(&mut alerts).await;
    assert_eq!(cleared.transition, Transition::Cleared);
    // The slow samples must leave the 10 s window, then three fast p99s in a row.
    assert_eq!(health.report().latency_p99, Some(Duration::from_millis(5)));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_makes_health_unhealthy_at_once() {
    let fake = Fake::new();
    let breaker = Breaker::new("cluster0", BreakerConfig::default()).unwrap();
    let monitor = HealthMonitor::builder(fake, config())
        .breaker(&breaker)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    until(&health, |r| r.status == HealthStatus::Healthy).await;
    let checks_before = health.report().checks;
    breaker.force_open();
    let report = until(&health, |r| r.status == HealthStatus::Unhealthy).await;
    assert_eq!(
        report.checks, checks_before,
        "no check was needed to notice"
    );
    assert_eq!(
        report.reasons,
        vec![Reason::Breaker(keel_breaker::BreakerState::ForcedOpen)]
    );
    assert_eq!(
        health.breaker(),
        Some(keel_breaker::BreakerState::ForcedOpen)
    );
    breaker.reset();
    until(&health, |r| r.status == HealthStatus::Healthy).await;
}

#[tokio::test(start_paused = true)]
async fn operation_errors_count_in_the_error_rate() {
    let fake = Fake::new();
    let stats = OperationStats::default();
    let (sink, mut alerts) = ChannelSink::new(16);
    let monitor = HealthMonitor::builder(fake, config())
        .operations(stats.clone())
        .sink(sink)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    checks(&health, 1).await;
    for _ in 0..3 {
        for _ in 0..10 {
            stats.record(Duration::from_millis(1), Some(ErrorClass::Network));
        }
        // A caller's mistake says nothing about the database.
        stats.record(Duration::from_millis(1), Some(ErrorClass::InvalidInput));
        checks(&health, 1).await;
    }
    expect_alert(&mut alerts, AlertKind::ErrorRateHigh, Transition::Raised).await;
    let rate = health.report().error_rate.unwrap();
    // 30 infrastructure errors over 4 checks + 33 operations.
    assert!((rate - 30.0 / 37.0).abs() < 1e-9, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn connection_changes_are_seen_between_checks() {
    let fake = Fake::new();
    let (_monitor, health) = healthy_monitor(&fake).await;
    let at = Instant::now();
    fake.set_state(ConnectionState::Degraded);
    let report = until(&health, |r| r.status == HealthStatus::Degraded).await;
    assert_eq!(at.elapsed(), Duration::ZERO);
    assert_eq!(
        report.reasons,
        vec![Reason::Connection(ConnectionState::Degraded)]
    );
    assert_eq!(health.connection(), ConnectionState::Degraded);
    fake.set_state(ConnectionState::Closed);
    until(&health, |r| r.status == HealthStatus::Unhealthy).await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_config_is_refused() {
    let mut config = config();
    config.interval = Duration::ZERO;
    let err = HealthMonitor::builder(Fake::new(), config)
        .spawn()
        .unwrap_err();
    assert_eq!(err.to_string(), "interval must be greater than zero");
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_checks() {
    let fake = Fake::new();
    let monitor = HealthMonitor::builder(fake, config()).spawn().unwrap();
    let health = monitor.handle();
    checks(&health, 2).await;
    monitor.shutdown().await;
    let checks_then = health.report().checks;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(health.report().checks, checks_then);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_alone_is_degraded_not_unhealthy() {
    let fake = Fake::new();
    let (_monitor, health) = healthy_monitor(&fake).await;

    // The driver re-checks the server after a dropped connection while pings still answer.
    fake.set_state(ConnectionState::Reconnecting);
    let report = until(&health, |r| r.connection == ConnectionState::Reconnecting).await;
    assert_eq!(report.status, HealthStatus::Degraded);
    let report = until(&health, |r| r.checks >= report.checks + 3).await;
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");

    // A closed client is unhealthy at once.
    fake.set_state(ConnectionState::Closed);
    until(&health, |r| r.status == HealthStatus::Unhealthy).await;
}
