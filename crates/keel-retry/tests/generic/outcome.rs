//! What the caller gets back: success after retries, or an annotated error.

use keel_retry::{Jitter, RetryConfig, RetryIf, RetryLayer, StopReason};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::support::{Kind, Req, Script, TestError, TestPolicy, config, layer, send};

#[tokio::test(start_paused = true)]
async fn success_after_failures_is_returned() {
    let script = Script::new([Err(Kind::Transient), Err(Kind::Transient), Ok(42)]);
    let mut service = layer(config(Jitter::None)).layer(script.service());
    assert_eq!(send(&mut service, Req::plain()).await, Ok(42));
    assert_eq!(script.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_stops_at_once() {
    let script = Script::new([Err(Kind::Transient), Err(Kind::Fatal), Ok(1)]);
    let mut service = layer(config(Jitter::None)).layer(script.service());
    let err = send(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(err.kind, Kind::Fatal);
    assert_eq!(
        (err.attempts, err.reason),
        (Some(2), Some(StopReason::NotRetryable))
    );
    assert_eq!(script.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_one_disables_retries() {
    let script = Script::always_failing();
    let config = RetryConfig {
        max_attempts: 1,
        ..config(Jitter::None)
    };
    let mut service = layer(config).layer(script.service());
    let err = send(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(
        (err.attempts, err.reason),
        (Some(1), Some(StopReason::MaxAttempts))
    );
    assert_eq!(script.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_default_give_up_hook_leaves_the_error_alone() {
    let script = Script::always_failing();
    let policy = RetryIf::new(|e: &TestError| e.kind == Kind::Transient);
    let mut service = RetryLayer::new(policy, config(Jitter::None))
        .unwrap()
        .layer(script.service());
    let start = Instant::now();
    let err = service
        .ready()
        .await
        .unwrap()
        .call(Req::plain())
        .await
        .unwrap_err();
    assert_eq!(err, TestError::new(Kind::Transient));
    assert_eq!(script.offsets(start).len(), 5);
}

#[tokio::test(start_paused = true)]
async fn accessors_reach_the_inner_service() {
    let script = Script::new([Ok(1)]);
    let mut service = layer(config(Jitter::None)).layer(script.service());
    let _: &_ = service.get_ref();
    let _: &mut _ = service.get_mut();
    let mut clone = service.clone();
    assert_eq!(send(&mut clone, Req::plain()).await, Ok(1));
    let mut inner = service.into_inner();
    // The unwrapped service does not retry: the script is empty, so it fails once.
    assert!(
        inner
            .ready()
            .await
            .unwrap()
            .call(Req::plain())
            .await
            .is_err()
    );
    assert_eq!(script.calls(), 2);
    assert!(format!("{:?}", layer(config(Jitter::None))).contains("RetryLayer"));
    let layer = layer(config(Jitter::None));
    let policy: &TestPolicy = layer.policy();
    assert!(!policy.reject_expired);
}
