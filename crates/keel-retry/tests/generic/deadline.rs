//! The deadline bounds all attempts together: from configuration, from the request, and with
//! an expected attempt duration.

use keel_retry::{Jitter, RetryConfig, RetryLayer, StopReason};
use tokio::time::Instant;
use tower::Layer;

use crate::support::{Kind, Req, Script, TestPolicy, config, layer, ms, send};

#[tokio::test(start_paused = true)]
async fn the_total_timeout_stops_retries_that_would_start_too_late() {
    let script = Script::always_failing();
    let config = RetryConfig {
        max_attempts: 10,
        total_timeout: Some(ms(350)),
        ..config(Jitter::None)
    };
    let mut service = layer(config).layer(script.service());
    let start = Instant::now();
    let err = send(&mut service, Req::plain()).await.unwrap_err();
    // Attempts at 0, 100, 300; the next would start at 700, past 350.
    assert_eq!(script.offsets(start), [0, 100, 300].map(ms));
    assert_eq!(
        (err.attempts, err.reason),
        (Some(3), Some(StopReason::DeadlineExceeded))
    );
    assert_eq!(
        start.elapsed(),
        ms(300),
        "gave up at once, without sleeping"
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_starting_exactly_at_the_deadline_is_not_started() {
    let script = Script::always_failing();
    let config = RetryConfig {
        total_timeout: Some(ms(300)),
        ..config(Jitter::None)
    };
    let mut service = layer(config).layer(script.service());
    let start = Instant::now();
    let err = send(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(script.offsets(start), [0, 100].map(ms));
    assert_eq!(err.reason, Some(StopReason::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_cannot_finish_in_time_is_not_started() {
    let script = Script::always_failing();
    let config = RetryConfig {
        total_timeout: Some(ms(1000)),
        attempt_timeout: Some(ms(400)),
        ..config(Jitter::None)
    };
    let mut service = layer(config).layer(script.service());
    let start = Instant::now();
    let err = send(&mut service, Req::plain()).await.unwrap_err();
    // At 700 an attempt could start (700 < 1000) but not finish (700 + 400 > 1000).
    assert_eq!(script.offsets(start), [0, 100, 300].map(ms));
    assert_eq!(err.reason, Some(StopReason::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_wins_when_earlier() {
    let script = Script::always_failing();
    let config = RetryConfig {
        total_timeout: Some(ms(10_000)),
        ..config(Jitter::None)
    };
    let mut service = layer(config).layer(script.service());
    let start = Instant::now();
    let request = Req {
        deadline: Some(start + ms(150)),
    };
    let err = send(&mut service, request).await.unwrap_err();
    assert_eq!(script.offsets(start), [0, 100].map(ms));
    assert_eq!(err.reason, Some(StopReason::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn the_configured_timeout_wins_when_earlier() {
    let script = Script::always_failing();
    let config = RetryConfig {
        total_timeout: Some(ms(150)),
        ..config(Jitter::None)
    };
    let mut service = layer(config).layer(script.service());
    let start = Instant::now();
    let request = Req {
        deadline: Some(start + ms(10_000)),
    };
    send(&mut service, request).await.unwrap_err();
    assert_eq!(script.offsets(start), [0, 100].map(ms));
}

#[tokio::test(start_paused = true)]
async fn a_hint_past_the_deadline_ends_the_retries() {
    let script = Script::new([Err(Kind::Hinted(ms(5_000))), Ok(1)]);
    let config = RetryConfig {
        total_timeout: Some(ms(1_000)),
        ..config(Jitter::None)
    };
    let mut service = layer(config).layer(script.service());
    let err = send(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(err.reason, Some(StopReason::DeadlineExceeded));
    assert_eq!(script.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_expired_request_is_refused_when_the_policy_says_so() {
    let script = Script::new([Ok(1), Ok(2)]);
    let policy = TestPolicy {
        reject_expired: true,
    };
    let mut service = RetryLayer::new(policy, config(Jitter::None))
        .unwrap()
        .layer(script.service());
    let past = Req {
        deadline: Some(Instant::now()),
    };
    let err = send(&mut service, past.clone()).await.unwrap_err();
    assert_eq!(err.kind, Kind::Expired);
    assert_eq!(script.calls(), 0, "nothing was sent");

    // Without the hook the first attempt runs anyway.
    let mut lenient = layer(config(Jitter::None)).layer(script.service());
    assert_eq!(send(&mut lenient, past).await, Ok(1));
}
