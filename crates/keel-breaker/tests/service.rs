//! The tower service and layer: rejection, fallbacks, readiness, sharing and error mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures_util::future::{BoxFuture, FutureExt};
use keel_breaker::{
    Breaker, BreakerConfig, BreakerError, BreakerState, CircuitOpen, count_errors_where,
    fallback_fn, fallback_service,
};
use tower::{Layer, Service, ServiceExt, service_fn};

fn breaker(consecutive: u32) -> Breaker {
    Breaker::new(
        "svc",
        BreakerConfig {
            consecutive_failures: Some(consecutive),
            ..BreakerConfig::default()
        },
    )
    .unwrap()
}

/// Fails when asked to; counts the calls that reach it.
fn backend(
    hits: Arc<AtomicUsize>,
) -> impl Service<
    bool,
    Response = &'static str,
    Error = &'static str,
    Future = BoxFuture<'static, Result<&'static str, &'static str>>,
> + Clone {
    service_fn(move |fail: bool| {
        hits.fetch_add(1, Ordering::SeqCst);
        async move { if fail { Err("down") } else { Ok("fresh") } }.boxed()
    })
}

#[tokio::test(start_paused = true)]
async fn open_circuit_fails_fast_without_calling_the_service() {
    let hits = Arc::new(AtomicUsize::new(0));
    let breaker = breaker(2);
    let mut svc = breaker.layer().layer(backend(hits.clone()));
    for _ in 0..2 {
        let err = svc.ready().await.unwrap().call(true).await.unwrap_err();
        assert!(matches!(err, BreakerError::Inner("down")));
    }
    let err = svc.ready().await.unwrap().call(false).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn fallback_closure_serves_while_open() {
    let hits = Arc::new(AtomicUsize::new(0));
    let breaker = breaker(1);
    let mut svc = breaker
        .layer()
        .with_fallback(fallback_fn(|_req: bool, open: CircuitOpen| async move {
            assert_eq!(open.retry_after(), Duration::from_secs(5));
            Ok::<_, BreakerError<&'static str>>("stale")
        }))
        .layer(backend(hits.clone()));
    assert!(svc.ready().await.unwrap().call(true).await.is_err());
    assert_eq!(
        svc.ready().await.unwrap().call(false).await.unwrap(),
        "stale"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn fallback_service_serves_while_open() {
    let breaker = breaker(1);
    let cache = service_fn(|_req: bool| async { Ok::<_, BreakerError<&'static str>>("cached") });
    let mut svc = breaker
        .layer()
        .with_fallback(fallback_service(cache))
        .layer(backend(Arc::default()));
    assert!(svc.ready().await.unwrap().call(true).await.is_err());
    assert_eq!(
        svc.ready().await.unwrap().call(true).await.unwrap(),
        "cached"
    );
}

/// Never ready: a dependency whose pool waits forever.
#[derive(Clone)]
struct NeverReady;

impl Service<()> for NeverReady {
    type Response = ();
    type Error = &'static str;
    type Future = std::future::Ready<Result<(), &'static str>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Pending
    }

    fn call(&mut self, _req: ()) -> Self::Future {
        std::future::ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn open_circuit_is_ready_even_when_the_service_is_not() {
    let breaker = breaker(1);
    let mut svc = breaker.layer().layer(NeverReady);
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(svc.poll_ready(&mut cx).is_pending());
    breaker.force_open();
    // The permit reserved before the change is still valid for this clone…
    assert!(svc.poll_ready(&mut cx).is_pending());
    // …but a fresh clone asks the breaker and is refused at once.
    let mut fresh = svc.clone();
    assert!(matches!(fresh.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let err = fresh.call(()).await.unwrap_err();
    assert!(err.is_circuit_open());
}

#[tokio::test(start_paused = true)]
async fn services_sharing_a_breaker_trip_together() {
    let breaker = breaker(2);
    let layer = breaker.layer();
    let mut users = layer.layer(backend(Arc::default()));
    let mut orders = layer.layer(backend(Arc::default()));
    let _ = users.ready().await.unwrap().call(true).await;
    let _ = orders.ready().await.unwrap().call(true).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(
        users
            .ready()
            .await
            .unwrap()
            .call(false)
            .await
            .unwrap_err()
            .is_circuit_open()
    );
    assert!(orders.breaker().try_acquire().is_err());
}

#[tokio::test(start_paused = true)]
async fn slow_responses_are_measured_from_call_to_completion() {
    let breaker = Breaker::new(
        "svc",
        BreakerConfig {
            minimum_calls: 2,
            window: keel_breaker::SlidingWindow::count(2),
            ..BreakerConfig::default()
        },
    )
    .unwrap();
    let slow = service_fn(|d: u64| async move {
        tokio::time::sleep(Duration::from_millis(d)).await;
        Ok::<_, &'static str>(())
    });
    let mut svc = breaker.layer().layer(slow);
    svc.ready().await.unwrap().call(2_500).await.unwrap();
    svc.ready().await.unwrap().call(10).await.unwrap();
    assert_eq!(breaker.window().slow, 1);
    assert_eq!(breaker.state(), BreakerState::Closed, "50 % slow < 80 %");
    svc.ready().await.unwrap().call(2_001).await.unwrap();
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "1 of the last 2 slow"
    );
    svc.ready().await.unwrap().call(2_001).await.unwrap();
    assert_eq!(breaker.state(), BreakerState::Open, "2 of the last 2 slow");
}

#[tokio::test(start_paused = true)]
async fn a_filter_policy_ignores_the_callers_errors() {
    let breaker = breaker(1);
    let svc = service_fn(|e: &'static str| async move { Err::<(), _>(e) });
    let mut svc = breaker
        .layer_with(count_errors_where(|e: &&'static str| *e == "network"))
        .layer(svc);
    for _ in 0..10 {
        let err = svc
            .ready()
            .await
            .unwrap()
            .call("duplicate key")
            .await
            .unwrap_err();
        assert!(matches!(err, BreakerError::Inner("duplicate key")));
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    let _ = svc.ready().await.unwrap().call("network").await;
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_slot() {
    let breaker = Breaker::new(
        "svc",
        BreakerConfig {
            consecutive_failures: Some(1),
            half_open_probes: 1,
            ..BreakerConfig::default()
        },
    )
    .unwrap();
    let hang = service_fn(|hang: bool| async move {
        if hang {
            std::future::pending::<()>().await;
        }
        Err::<(), _>("down")
    });
    let mut svc = breaker.layer().layer(hang);
    let _ = svc.ready().await.unwrap().call(false).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    let probe = svc.ready().await.unwrap().call(true);
    assert!(
        breaker.try_acquire().is_err(),
        "the only probe slot is taken"
    );
    drop(probe);
    assert!(breaker.try_acquire().unwrap().is_probe());
}

#[test]
fn accessors_reach_the_inner_service() {
    let breaker = breaker(1);
    let mut svc = breaker.layer().layer(7_u8);
    assert_eq!(*svc.get_ref(), 7);
    *svc.get_mut() = 8;
    assert_eq!(svc.into_inner(), 8);
}

/// Serves reads from a cache; never pretends a write succeeded.
#[derive(Clone)]
struct ReadsOnly;

impl keel_breaker::Fallback<bool, &'static str, BreakerError<&'static str>> for ReadsOnly {
    type Future = std::future::Ready<Result<&'static str, BreakerError<&'static str>>>;

    fn fallback(&mut self, is_write: bool, _open: CircuitOpen) -> Option<Self::Future> {
        (!is_write).then(|| std::future::ready(Ok("cached read")))
    }
}

#[tokio::test(start_paused = true)]
async fn a_fallback_may_decline_and_let_the_rejection_through() {
    let breaker = breaker(1);
    let mut svc = breaker
        .layer()
        .with_fallback(ReadsOnly)
        .layer(backend(Arc::default()));
    let _ = svc.ready().await.unwrap().call(true).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(
        svc.ready().await.unwrap().call(false).await.unwrap(),
        "cached read"
    );
    let err = svc.ready().await.unwrap().call(true).await.unwrap_err();
    assert!(err.is_circuit_open());
}

#[tokio::test(start_paused = true)]
async fn time_between_poll_ready_and_call_is_not_the_calls_duration() {
    let breaker = breaker(5);
    let mut svc = breaker.layer().layer(backend(Arc::default()));
    svc.ready().await.unwrap();
    tokio::time::advance(Duration::from_secs(3)).await;
    svc.call(false).await.unwrap();
    assert_eq!(breaker.window().calls, 1);
    assert_eq!(breaker.window().slow, 0);
}
