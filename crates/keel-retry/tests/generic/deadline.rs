//! The deadline bounds all attempts together: from configuration, from the request, and with
//! an expected attempt duration.

use std::time::Duration;

use keel_retry::{BackoffConfig, Jitter, RetryConfig, RetryLayer, StopReason};
use tokio::time::Instant;
use tower::Layer;

use crate::support::{
    HANG, Kind, Req, Script, TestError, TestPolicy, config, layer, ms, send, send_guarded,
};

/// A layer whose policy ends attempts still running at the deadline.
fn cutting(config: RetryConfig) -> RetryLayer<TestPolicy> {
    let policy = TestPolicy {
        cut_at_deadline: true,
        ..TestPolicy::default()
    };
    RetryLayer::new(policy, config).unwrap()
}

fn within(total: u64) -> RetryConfig {
    RetryConfig {
        total_timeout: Some(ms(total)),
        ..config(Jitter::None)
    }
}

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

/// Sends one request over an always-failing script with the configured `total_timeout` and a
/// request deadline `request_deadline` from the start: when each attempt started, and the error.
async fn with_both_deadlines(
    total_timeout: Duration,
    request_deadline: Duration,
) -> (Vec<Duration>, TestError) {
    let script = Script::always_failing();
    let config = RetryConfig {
        total_timeout: Some(total_timeout),
        ..config(Jitter::None)
    };
    let mut service = layer(config).layer(script.service());
    let start = Instant::now();
    let request = Req {
        deadline: Some(start + request_deadline),
    };
    let err = send(&mut service, request).await.unwrap_err();
    (script.offsets(start), err)
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_wins_when_earlier() {
    let (offsets, err) = with_both_deadlines(ms(10_000), ms(150)).await;
    assert_eq!(offsets, [0, 100].map(ms));
    assert_eq!(err.reason, Some(StopReason::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn the_configured_timeout_wins_when_earlier() {
    let (offsets, _) = with_both_deadlines(ms(150), ms(10_000)).await;
    assert_eq!(offsets, [0, 100].map(ms));
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
        ..TestPolicy::default()
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

#[tokio::test(start_paused = true)]
async fn a_hanging_first_attempt_is_cut_exactly_at_the_deadline() {
    let script = Script::timed([(HANG, Ok(1))]);
    let mut service = cutting(within(1_000)).layer(script.service());
    let start = Instant::now();
    let err = send_guarded(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        ms(1_000),
        "time spent is bounded, not only attempts"
    );
    assert_eq!(err.kind, Kind::Cut);
    assert_eq!(
        (err.attempts, err.reason),
        (Some(1), Some(StopReason::DeadlineExceeded))
    );
    assert_eq!(script.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_retry_is_cut_at_the_deadline() {
    // Fails at once, then the retry at 100 ms takes 5 s.
    let script = Script::timed([(ms(0), Err(Kind::Transient)), (ms(5_000), Ok(1))]);
    let mut service = cutting(within(1_000)).layer(script.service());
    let start = Instant::now();
    let err = send_guarded(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(script.offsets(start), [0, 100].map(ms));
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(
        (err.kind, err.attempts, err.reason),
        (Kind::Cut, Some(2), Some(StopReason::DeadlineExceeded))
    );
}

#[tokio::test(start_paused = true)]
async fn the_request_deadline_cuts_too() {
    let script = Script::timed([(HANG, Ok(1))]);
    let mut service = cutting(within(10_000)).layer(script.service());
    let start = Instant::now();
    let request = Req {
        deadline: Some(start + ms(250)),
    };
    let err = send_guarded(&mut service, request).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(250));
    assert_eq!(err.reason, Some(StopReason::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_finishing_before_the_deadline_is_not_cut() {
    let script = Script::timed([(ms(999), Ok(7))]);
    let mut service = cutting(within(1_000)).layer(script.service());
    let start = Instant::now();
    assert_eq!(send_guarded(&mut service, Req::plain()).await, Ok(7));
    assert_eq!(start.elapsed(), ms(999));
}

#[tokio::test(start_paused = true)]
async fn without_a_deadline_error_a_running_attempt_finishes() {
    // The default hook offers no error: the layer cannot cut, so the attempt runs on.
    let script = Script::timed([(ms(1_500), Ok(7))]);
    let mut service = layer(within(1_000)).layer(script.service());
    let start = Instant::now();
    assert_eq!(send_guarded(&mut service, Req::plain()).await, Ok(7));
    assert_eq!(start.elapsed(), ms(1_500));
}

#[tokio::test(start_paused = true)]
async fn without_a_deadline_nothing_is_cut() {
    let script = Script::timed([(ms(60_000), Ok(7))]);
    let mut service = cutting(config(Jitter::None)).layer(script.service());
    let start = Instant::now();
    assert_eq!(send_guarded(&mut service, Req::plain()).await, Ok(7));
    assert_eq!(start.elapsed(), ms(60_000));
}

#[tokio::test(start_paused = true)]
async fn waiting_for_readiness_between_attempts_is_cut_at_the_deadline() {
    // Ready for the first attempt only; the retry waits for readiness that never comes.
    let script = Script::always_failing();
    let mut service = cutting(within(1_000)).layer(script.service_ready(1, false));
    let start = Instant::now();
    let err = send_guarded(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(script.calls(), 1);
    assert_eq!(
        (err.kind, err.attempts, err.reason),
        (Kind::Cut, Some(1), Some(StopReason::DeadlineExceeded))
    );
}

#[tokio::test(start_paused = true)]
async fn a_readiness_failure_between_attempts_says_how_many_attempts_were_made() {
    let script = Script::always_failing();
    let mut service = layer(within(1_000)).layer(script.service_ready(2, true));
    let err = send_guarded(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(script.calls(), 2);
    assert_eq!(
        (err.kind, err.attempts, err.reason),
        (Kind::Fatal, Some(2), Some(StopReason::NotRetryable))
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_whose_timer_wakes_at_the_deadline_is_not_started() {
    // Planned start 999.5 ms < 1 000 ms, but timers tick in whole milliseconds: the backoff
    // ends at 1 000 ms, the deadline, where no attempt may start.
    let config = RetryConfig {
        backoff: BackoffConfig {
            base: Duration::from_micros(999_500),
            cap: ms(2_000),
            multiplier: 2.0,
            jitter: Jitter::None,
        },
        ..within(1_000)
    };
    let script = Script::always_failing();
    let mut service = layer(config).layer(script.service());
    let start = Instant::now();
    let err = send_guarded(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(1_000), "the timer woke at the deadline");
    assert_eq!(
        script.offsets(start),
        [ms(0)],
        "and no attempt started there"
    );
    assert_eq!(
        (err.kind, err.attempts, err.reason),
        (Kind::Transient, Some(1), Some(StopReason::DeadlineExceeded)),
        "the last failure is returned"
    );
}

/// `TestPolicy` with a count of how often the layer asked for the deadline error.
#[derive(Clone, Default)]
struct CountingCuts {
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingCuts {
    fn asked(&self) -> usize {
        self.asked.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl keel_retry::Policy<Req, crate::support::TestError> for CountingCuts {
    fn decide(&self, request: &Req, error: &crate::support::TestError) -> keel_retry::Decision {
        TestPolicy::default().decide(request, error)
    }

    fn deadline_error(&self, request: &Req) -> Option<crate::support::TestError> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        TestPolicy {
            cut_at_deadline: true,
            ..TestPolicy::default()
        }
        .deadline_error(request)
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_error_is_built_only_when_the_deadline_passes() {
    // Building it for every request that waits would cost more than the rest of the layer.
    let policy = CountingCuts::default();
    let layer = RetryLayer::new(policy.clone(), within(1_000)).unwrap();
    let script = Script::timed([(ms(999), Ok(7)), (ms(500), Ok(8))]);
    let mut service = layer.layer(script.service());
    assert_eq!(send_guarded(&mut service, Req::plain()).await, Ok(7));
    assert_eq!(send_guarded(&mut service, Req::plain()).await, Ok(8));
    assert_eq!(policy.asked(), 0, "no request reached its deadline");

    let hung = Script::timed([(HANG, Ok(9))]);
    let mut service = layer.layer(hung.service());
    let start = Instant::now();
    let err = send_guarded(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!((err.kind, policy.asked()), (Kind::Cut, 1));
}

#[tokio::test(start_paused = true)]
async fn with_the_deadline_enforced_below_the_layer_arms_no_cut_of_its_own() {
    let policy = CountingCuts::default();
    let layer = RetryLayer::new(policy.clone(), within(1_000))
        .unwrap()
        .with_deadline_enforced_below();
    // The service below keeps its promise: its attempt ends at the deadline, with its error.
    let below = Script::timed([(ms(1_000), Err(Kind::Fatal))]);
    let mut service = layer.layer(below.service());
    let start = Instant::now();
    let err = send_guarded(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(1_000));
    assert_eq!(err.kind, Kind::Fatal);
    assert_eq!(policy.asked(), 0, "the layer cut nothing itself");

    // A service that breaks the promise is not cut by this layer: the attempt still runs
    // when the deadline is long past.
    let hung = Script::timed([(HANG, Ok(9))]);
    let mut service = layer.layer(hung.service());
    let outcome = tokio::time::timeout(ms(5_000), send_guarded(&mut service, Req::plain())).await;
    assert!(outcome.is_err(), "the attempt was cut: {outcome:?}");
    assert_eq!(policy.asked(), 0);
}
