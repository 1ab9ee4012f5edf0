//! User layers at Keel's two named points, with the layers of the `user_layers` example: a
//! per-process rate limit around the call that fails with `Overloaded` and a `retry_after`, and
//! a log around the call and around each attempt. Against keel-testkit (or `KEEL_TEST_URI`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/user_layers/layers.rs"]
mod layers;
mod support;

use std::{
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use keel_core::{ErrorClass, ErrorKind, Operation};
use mongokeel::{Keel, KeelConfig};
use support::ANSWER;

async fn server() -> (Option<keel_testkit::TestServer>, String) {
    match std::env::var("KEEL_TEST_URI")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(uri) => (None, uri),
        None => {
            let server = keel_testkit::TestServer::start().await.unwrap();
            let uri = server.uri();
            (Some(server), uri)
        }
    }
}

/// A read that fails its first `failures` attempts with a network error (retryable), then
/// answers [`ANSWER`]; counts its attempts.
fn flaky(failures: u32, attempts: Arc<AtomicU32>) -> Operation<u32> {
    support::flaky("test.items.find_one", failures, attempts)
}

#[tokio::test]
async fn a_rate_limit_around_the_call_fails_fast_with_overloaded_and_a_retry_after() {
    let (_server, uri) = server().await;
    let two_a_minute = NonZeroU32::new(2).unwrap();
    let keel = Keel::builder(KeelConfig::for_uri(uri).unwrap())
        .layer_around_call(layers::RateLimitLayer::per_minute(two_a_minute))
        .build()
        .await
        .unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    for _ in 0..2 {
        assert_eq!(
            keel.run(flaky(0, Arc::clone(&attempts))).await.unwrap(),
            ANSWER
        );
    }
    let refused = keel.run(flaky(0, Arc::clone(&attempts))).await.unwrap_err();
    assert_eq!(refused.class(), ErrorClass::Overloaded, "{refused}");
    let wait = refused
        .retry_after()
        .expect("the limit says when to come back");
    assert!(!wait.is_zero() && wait.as_secs() <= 30, "{wait:?}");
    assert!(refused.to_string().contains("rate limit"), "{refused}");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "the refused call never ran"
    );
    // A clone of the handle shares the limit: it is the process's.
    let clone = keel.clone();
    let again = clone.run(flaky(0, attempts)).await.unwrap_err();
    assert_eq!(again.class(), ErrorClass::Overloaded);
    keel.shutdown().await;
}

#[tokio::test]
async fn a_log_around_the_call_sees_it_once_and_a_log_around_each_attempt_sees_every_attempt() {
    let (_server, uri) = server().await;
    let calls = layers::CallLogLayer::new("call");
    let attempt_log = layers::CallLogLayer::new("attempt");
    let keel = Keel::builder(KeelConfig::for_uri(uri).unwrap())
        .layer_around_call(calls.clone())
        .layer_around_attempt(attempt_log.clone())
        .build()
        .await
        .unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    assert_eq!(
        keel.run(flaky(1, Arc::clone(&attempts))).await.unwrap(),
        ANSWER
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "retried once");
    assert_eq!(calls.lines(), ["call test.items.find_one ok"]);
    let attempt_lines = attempt_log.lines();
    assert_eq!(attempt_lines.len(), 2, "{attempt_lines:?}");
    assert!(attempt_lines[0].starts_with("attempt test.items.find_one "));
    assert_ne!(attempt_lines[0], "attempt test.items.find_one ok");
    assert_eq!(attempt_lines[1], "attempt test.items.find_one ok");
    // The retry layer's own counters saw the same.
    let retries = keel.retry_stats().unwrap().snapshot();
    assert_eq!((retries.attempts, retries.retries), (2, 1));
    keel.shutdown().await;
}

#[tokio::test]
async fn an_attempt_layer_cannot_hold_a_call_past_its_deadline() {
    let (_server, uri) = server().await;
    let mut config = KeelConfig::for_uri(uri).unwrap();
    config.timeouts.attempt = Duration::from_secs(3);
    config.timeouts.checkout_wait = Duration::from_secs(1);
    config.timeouts.deadline = Duration::from_secs(3);
    // A layer whose attempts never end: the retry layer cuts the call at the deadline itself.
    let stuck = tower::layer::layer_fn(|inner: mongokeel::KeelService| {
        tower::util::BoxCloneSyncService::new(tower::util::AndThen::new(inner, |_| {
            std::future::pending::<Result<mongokeel::AnyValue, mongokeel::Error>>()
        }))
    });
    let keel = Keel::builder(config)
        .layer_around_attempt(stuck)
        .build()
        .await
        .unwrap();
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let err = keel.run(flaky(0, Arc::default())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    let waited = started.elapsed();
    // The timer wheel counts whole milliseconds.
    assert!(
        waited >= Duration::from_secs(3) && waited <= Duration::from_millis(3_001),
        "{waited:?}"
    );
    keel.shutdown().await;
}
