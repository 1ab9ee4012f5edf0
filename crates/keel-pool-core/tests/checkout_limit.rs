//! The checkout wait limit under paused time: admits up to the pool size, bounds waiters and
//! their wait, and fails fast with `Overloaded`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use keel_core::{Error, ErrorClass, ErrorKind, Operation, OperationKind};
use keel_pool_core::CheckoutLimitLayer;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt, service_fn};

fn op() -> Operation<u32> {
    Operation::write("test.write", false, |_client| async { Ok(1) })
}

/// An inner service whose calls finish only when the test releases them.
fn gated(
    gate: Arc<Semaphore>,
) -> impl Service<Operation<u32>, Response = u32, Error = Error, Future: Send> + Clone + Send + 'static
{
    service_fn(move |_op: Operation<u32>| {
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.unwrap().forget();
            Ok::<_, Error>(7)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn admits_up_to_the_limit_then_fails_fast_after_the_wait() {
    let gate = Arc::new(Semaphore::new(0));
    let layer = CheckoutLimitLayer::new(2, Duration::from_millis(100));
    let service = layer.layer(gated(Arc::clone(&gate)));

    let first = tokio::spawn(service.clone().oneshot(op()));
    let second = tokio::spawn(service.clone().oneshot(op()));
    tokio::task::yield_now().await;

    let started = tokio::time::Instant::now();
    let third = service.clone().oneshot(op()).await.unwrap_err();
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100),
        "waits exactly the limit"
    );
    assert_eq!(third.class(), ErrorClass::Overloaded);
    assert_eq!(third.kind(), ErrorKind::Overloaded);
    assert_eq!(third.retry_after(), Some(Duration::from_millis(100)));
    assert!(
        third.is_retryable(OperationKind::Write { idempotent: false }),
        "nothing was sent"
    );

    gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap(), 7);
    assert_eq!(second.await.unwrap().unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_gets_the_slot_freed_within_the_wait() {
    let gate = Arc::new(Semaphore::new(0));
    let service =
        CheckoutLimitLayer::new(1, Duration::from_secs(1)).layer(gated(Arc::clone(&gate)));
    let first = tokio::spawn(service.clone().oneshot(op()));
    tokio::task::yield_now().await;
    let second = tokio::spawn(service.clone().oneshot(op()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap(), 7);
    assert_eq!(second.await.unwrap().unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn too_many_waiters_are_refused_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let layer = CheckoutLimitLayer::new(1, Duration::from_secs(1)).with_max_waiting(1);
    let service = layer.layer(gated(Arc::clone(&gate)));
    let running = tokio::spawn(service.clone().oneshot(op()));
    tokio::task::yield_now().await;
    let waiting = tokio::spawn(service.clone().oneshot(op()));
    tokio::task::yield_now().await;

    let started = tokio::time::Instant::now();
    let refused = service.clone().oneshot(op()).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
    assert_eq!(refused.class(), ErrorClass::Overloaded);
    assert!(refused.to_string().contains("already wait"), "{refused}");

    gate.add_permits(2);
    assert!(running.await.unwrap().is_ok());
    assert!(waiting.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_wait_never_outlasts_the_operations_deadline() {
    let gate = Arc::new(Semaphore::new(0));
    let service =
        CheckoutLimitLayer::new(1, Duration::from_secs(10)).layer(gated(Arc::clone(&gate)));
    let _running = tokio::spawn(service.clone().oneshot(op()));
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    let err = service
        .clone()
        .oneshot(op().with_timeout(Duration::from_millis(250)))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(err.class(), ErrorClass::Overloaded);
}

#[tokio::test(start_paused = true)]
async fn a_permit_freed_before_the_first_poll_is_taken_without_queueing() {
    let gate = Arc::new(Semaphore::new(0));
    // No waiting at all: only a free permit lets a request through.
    let layer = CheckoutLimitLayer::new(1, Duration::from_secs(1)).with_max_waiting(0);
    let mut service = layer.layer(gated(Arc::clone(&gate)));
    let running = tokio::spawn(service.clone().oneshot(op()));
    tokio::task::yield_now().await;

    // Called while the only permit is taken, polled only after it was given back.
    let late = service.ready().await.unwrap().call(op());
    gate.add_permits(2);
    assert_eq!(running.await.unwrap().unwrap(), 7);
    assert_eq!(late.await.unwrap(), 7);
}
