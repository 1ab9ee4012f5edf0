//! `HealthGateLayer` under paused time: pass while not unhealthy, fail fast, hold in a bounded
//! queue until health returns or the hold time ends, and the errors' classes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use keel_core::{ErrorClass, ErrorKind};
use keel_health::{GateError, GateMode, HealthGateLayer, HealthReport, HealthStatus};
use keel_pool_core::ConnectionState;
use tokio::{sync::watch, time::Instant};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};

fn report(status: HealthStatus) -> HealthReport {
    let mut report = HealthReport::starting(ConnectionState::Connected, None);
    report.status = status;
    report
}

/// A service that counts the calls reaching it.
fn counting(
    calls: Arc<AtomicU32>,
) -> impl Service<u32, Response = u32, Error = GateError, Future: Send + 'static> + Clone + Send + 'static
{
    service_fn(move |n: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, GateError>(n * 2) }
    })
}

/// A counting service behind a gate (retry-after 5 s) that holds up to `max_waiting` requests
/// for up to `max_wait` while unhealthy.
fn holding_gate(
    receiver: watch::Receiver<HealthReport>,
    max_wait: Duration,
    max_waiting: usize,
    calls: Arc<AtomicU32>,
) -> impl Service<u32, Response = u32, Error = GateError, Future: Send + 'static> + Clone + Send + 'static
{
    ServiceBuilder::new()
        .layer(
            HealthGateLayer::from_receiver(receiver, Duration::from_secs(5))
                .hold(max_wait, max_waiting),
        )
        .service(counting(calls))
}

#[tokio::test(start_paused = true)]
async fn healthy_and_degraded_pass_unhealthy_fails_fast() {
    let (health, receiver) = watch::channel(report(HealthStatus::Healthy));
    let calls = Arc::new(AtomicU32::new(0));
    let layer = HealthGateLayer::from_receiver(receiver, Duration::from_secs(5));
    assert_eq!(layer.mode(), GateMode::FailFast);
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(counting(calls.clone()));
    assert_eq!(service.clone().oneshot(1).await.unwrap(), 2);
    health.send_replace(report(HealthStatus::Degraded));
    assert_eq!(service.clone().oneshot(2).await.unwrap(), 4);
    health.send_replace(report(HealthStatus::Unhealthy));
    let start = Instant::now();
    let err = service.clone().oneshot(3).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        err,
        GateError::Unhealthy {
            retry_after: Duration::from_secs(5)
        }
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the refused call never reached the service"
    );
}

#[tokio::test(start_paused = true)]
async fn held_requests_go_through_when_health_returns() {
    let (health, receiver) = watch::channel(report(HealthStatus::Unhealthy));
    let calls = Arc::new(AtomicU32::new(0));
    let service = holding_gate(receiver, Duration::from_secs(2), 4, calls.clone());
    let start = Instant::now();
    let held = tokio::spawn(service.clone().oneshot(21));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0, "held while unhealthy");
    health.send_replace(report(HealthStatus::Degraded));
    assert_eq!(held.await.unwrap().unwrap(), 42);
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn a_hold_ends_at_max_wait() {
    let (_health, receiver) = watch::channel(report(HealthStatus::Unhealthy));
    let service = holding_gate(receiver, Duration::from_secs(2), 4, Arc::default());
    let start = Instant::now();
    let err = service.oneshot(1).await.unwrap_err();
    assert_eq!(
        err,
        GateError::HoldTimeout {
            waited: Duration::from_secs(2)
        }
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn the_hold_queue_is_bounded() {
    let (health, receiver) = watch::channel(report(HealthStatus::Unhealthy));
    let service = holding_gate(receiver, Duration::from_secs(10), 2, Arc::default());
    let first = tokio::spawn(service.clone().oneshot(1));
    let second = tokio::spawn(service.clone().oneshot(2));
    tokio::task::yield_now().await;
    let err = service.clone().oneshot(3).await.unwrap_err();
    assert_eq!(
        err,
        GateError::QueueFull {
            waiting: 2,
            retry_after: Duration::from_secs(5)
        }
    );
    health.send_replace(report(HealthStatus::Healthy));
    assert_eq!(first.await.unwrap().unwrap(), 2);
    assert_eq!(second.await.unwrap().unwrap(), 4);
    // Places are given back: the next unhealthy spell can hold two again.
    health.send_replace(report(HealthStatus::Unhealthy));
    let a = tokio::spawn(service.clone().oneshot(5));
    let b = tokio::spawn(service.clone().oneshot(6));
    tokio::task::yield_now().await;
    health.send_replace(report(HealthStatus::Healthy));
    assert_eq!(
        (a.await.unwrap().unwrap(), b.await.unwrap().unwrap()),
        (10, 12)
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_monitor_ends_the_hold_with_a_refusal() {
    let (health, receiver) = watch::channel(report(HealthStatus::Unhealthy));
    let service = holding_gate(receiver, Duration::from_secs(10), 2, Arc::default());
    let held = tokio::spawn(service.oneshot(1));
    tokio::task::yield_now().await;
    drop(health);
    assert!(matches!(
        held.await.unwrap(),
        Err(GateError::HoldTimeout { .. })
    ));
}

#[test]
fn gate_errors_map_to_keel_errors() {
    let fast: keel_core::Error = GateError::Unhealthy {
        retry_after: Duration::from_secs(3),
    }
    .into();
    assert_eq!(fast.class(), ErrorClass::Unavailable);
    assert_eq!(fast.retry_after(), Some(Duration::from_secs(3)));
    assert!(
        !fast.class().is_infrastructure(),
        "breakers must not count gate refusals"
    );
    let held: keel_core::Error = GateError::HoldTimeout {
        waited: Duration::from_secs(2),
    }
    .into();
    assert_eq!(held.kind(), ErrorKind::Unreachable);
    assert_eq!(held.class(), ErrorClass::ServerSelection);
}

#[tokio::test(start_paused = true)]
async fn works_with_keel_errors_and_boxed_errors() {
    let (_health, receiver) = watch::channel(report(HealthStatus::Unhealthy));
    let keel = ServiceBuilder::new()
        .layer(HealthGateLayer::from_receiver(
            receiver.clone(),
            Duration::from_secs(1),
        ))
        .service(service_fn(
            |n: u32| async move { Ok::<_, keel_core::Error>(n) },
        ));
    assert_eq!(
        keel.oneshot(1).await.unwrap_err().class(),
        ErrorClass::Unavailable
    );
    let boxed = ServiceBuilder::new()
        .layer(HealthGateLayer::from_receiver(
            receiver,
            Duration::from_secs(1),
        ))
        .service(service_fn(|n: u32| async move { Ok::<_, BoxError>(n) }));
    let err = boxed.oneshot(1).await.unwrap_err();
    assert!(err.downcast_ref::<GateError>().is_some());
}
