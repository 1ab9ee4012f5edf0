//! The MongoDB policy: infrastructure classes trip the breaker, the caller's mistakes do not, and
//! rejections are `keel_core::Error`s.
#![cfg(feature = "mongodb")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_breaker::{Breaker, BreakerConfig, BreakerState};
use keel_core::{DriverFailure, Error, ErrorClass, ErrorFacts, ErrorKind};
use tower::{Layer, ServiceExt, service_fn};

fn error(facts: ErrorFacts) -> Error {
    Error::from_facts(&facts, "test failure")
}

fn breaker() -> Breaker {
    Breaker::new(
        "cluster0",
        BreakerConfig {
            consecutive_failures: Some(3),
            ..BreakerConfig::default()
        },
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn caller_errors_do_not_trip_the_breaker() {
    let breaker = breaker();
    let duplicate = error(ErrorFacts::new(DriverFailure::WriteError).with_code(11000));
    let validation = error(ErrorFacts::new(DriverFailure::WriteError).with_code(121));
    for err in [&duplicate, &validation] {
        assert_eq!(err.class(), ErrorClass::InvalidInput, "{err}");
    }
    let svc = service_fn(move |n: usize| {
        let err = if n.is_multiple_of(2) {
            duplicate.clone()
        } else {
            validation.clone()
        };
        async move { Err::<(), _>(err) }
    });
    let svc = breaker.mongodb_layer().layer(svc);
    for n in 0..50 {
        let err = svc.clone().oneshot(n).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.window().calls, 0);
}

#[tokio::test(start_paused = true)]
async fn infrastructure_errors_trip_and_rejections_are_keel_errors() {
    let breaker = breaker();
    let svc = service_fn(|facts: ErrorFacts| async move { Err::<(), _>(error(facts)) });
    let svc = breaker.mongodb_layer().layer(svc);
    for failure in [
        DriverFailure::Io,
        DriverFailure::ServerSelection,
        DriverFailure::PoolCleared,
    ] {
        let err = svc
            .clone()
            .oneshot(ErrorFacts::new(failure))
            .await
            .unwrap_err();
        assert!(err.class().is_infrastructure());
    }
    assert_eq!(breaker.state(), BreakerState::Open);

    let rejected = svc
        .clone()
        .oneshot(ErrorFacts::new(DriverFailure::Io))
        .await
        .unwrap_err();
    assert_eq!(rejected.kind(), ErrorKind::CircuitOpen);
    assert_eq!(rejected.class(), ErrorClass::Unavailable);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn a_circuit_opened_further_down_is_not_a_failure_here() {
    let breaker = breaker();
    let svc = service_fn(|()| async { Err::<(), _>(Error::circuit_open(Duration::from_secs(1))) });
    let svc = breaker.mongodb_layer().layer(svc);
    for _ in 0..10 {
        let _ = svc.clone().oneshot(()).await;
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}
