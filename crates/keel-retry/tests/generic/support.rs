//! A scripted mock service, a test request/error pair and the policy over them.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use keel_retry::{BackoffConfig, Decision, Jitter, Policy, RetryConfig, RetryLayer, StopReason};
use tokio::time::Instant;

use crate::common::CallLog;
use tower::{Service, ServiceExt};

/// A request with an optional caller deadline.
#[derive(Clone, Debug)]
pub(crate) struct Req {
    pub(crate) deadline: Option<Instant>,
}

impl Req {
    pub(crate) fn plain() -> Self {
        Self { deadline: None }
    }
}

/// What went wrong, and what the layer recorded when it gave up.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TestError {
    pub(crate) kind: Kind,
    pub(crate) attempts: Option<u32>,
    pub(crate) reason: Option<StopReason>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Transient,
    Fatal,
    Hinted(Duration),
    Expired,
    /// Made by the policy's `deadline_error`: the layer cut an attempt at the deadline.
    Cut,
}

impl TestError {
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            kind,
            attempts: None,
            reason: None,
        }
    }
}

/// Retries transient and hinted errors; reads the request's deadline.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TestPolicy {
    pub(crate) reject_expired: bool,
    /// Offer an error (`Kind::Cut`) so the layer can end attempts at the deadline.
    pub(crate) cut_at_deadline: bool,
}

impl Policy<Req, TestError> for TestPolicy {
    fn decide(&self, _request: &Req, error: &TestError) -> Decision {
        match error.kind {
            Kind::Transient => Decision::RETRY,
            Kind::Hinted(at_least) => Decision::Retry {
                at_least: Some(at_least),
            },
            Kind::Fatal | Kind::Expired | Kind::Cut => Decision::Stop,
        }
    }

    fn deadline(&self, request: &Req) -> Option<Instant> {
        request.deadline
    }

    fn reject_expired(&self, _request: &Req) -> Option<TestError> {
        self.reject_expired.then(|| TestError::new(Kind::Expired))
    }

    fn deadline_error(&self, _request: &Req) -> Option<TestError> {
        self.cut_at_deadline.then(|| TestError::new(Kind::Cut))
    }

    fn on_give_up(&self, mut error: TestError, attempts: u32, reason: StopReason) -> TestError {
        error.attempts = Some(attempts);
        error.reason = Some(reason);
        error
    }

    fn error_class(&self, error: &TestError) -> &'static str {
        match error.kind {
            Kind::Transient => "transient",
            Kind::Hinted(_) => "hinted",
            Kind::Fatal | Kind::Expired | Kind::Cut => "final",
        }
    }
}

/// An attempt that never finishes (paused time can only end it through the deadline).
pub(crate) const HANG: Duration = Duration::MAX;

/// Answers from a script (then keeps failing at once with a transient error) and records when
/// each call started. A scripted step may take time (`Script::timed`), or never end ([`HANG`]).
#[derive(Clone, Default)]
pub(crate) struct Script {
    outcomes: Arc<Mutex<VecDeque<Step>>>,
    calls: CallLog,
}

/// One scripted call: how long it takes, and what it answers.
pub(crate) type Step = (Duration, Result<u32, Kind>);

/// What a scripted call returns: at once, after a (paused-time) sleep, or never.
pub(crate) type Answer = Pin<Box<dyn Future<Output = Result<u32, TestError>> + Send>>;

impl Script {
    /// Steps that answer at once.
    pub(crate) fn new(outcomes: impl IntoIterator<Item = Result<u32, Kind>>) -> Self {
        Self::timed(outcomes.into_iter().map(|o| (Duration::ZERO, o)))
    }

    /// Steps that answer after their duration ([`HANG`]: never).
    pub(crate) fn timed(outcomes: impl IntoIterator<Item = Step>) -> Self {
        Self {
            outcomes: Arc::new(Mutex::new(outcomes.into_iter().collect())),
            calls: CallLog::default(),
        }
    }

    /// Fails with a transient error forever.
    pub(crate) fn always_failing() -> Self {
        Self::new([])
    }

    pub(crate) fn service(&self) -> ScriptService {
        ScriptService {
            script: self.clone(),
            ready: None,
        }
    }

    /// A service that is ready `times` times (shared by all its clones), then either never
    /// again (`fail: false`) or fails readiness (`fail: true`).
    pub(crate) fn service_ready(&self, times: usize, fail: bool) -> ScriptService {
        ScriptService {
            script: self.clone(),
            ready: Some(Arc::new(Mutex::new((times, fail)))),
        }
    }

    /// When each call happened, relative to `start`.
    pub(crate) fn offsets(&self, start: Instant) -> Vec<Duration> {
        self.calls.offsets(start)
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.count()
    }
}

/// The scripted service, optionally with limited readiness.
#[derive(Clone)]
pub(crate) struct ScriptService {
    script: Script,
    /// Readiness left, and whether running out fails (else: pending forever).
    ready: Option<Arc<Mutex<(usize, bool)>>>,
}

impl Service<Req> for ScriptService {
    type Response = u32;
    type Error = TestError;
    type Future = Answer;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TestError>> {
        let Some(ready) = &self.ready else {
            return Poll::Ready(Ok(()));
        };
        let mut ready = ready.lock().unwrap();
        match *ready {
            (0, false) => Poll::Pending,
            (0, true) => Poll::Ready(Err(TestError::new(Kind::Fatal))),
            (ref mut left, _) => {
                *left -= 1;
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, _req: Req) -> Answer {
        self.script.calls.record();
        let next = self.script.outcomes.lock().unwrap().pop_front();
        let (after, outcome) = next.unwrap_or((Duration::ZERO, Err(Kind::Transient)));
        let result = outcome.map_err(TestError::new);
        if after == HANG {
            Box::pin(std::future::pending())
        } else if after.is_zero() {
            Box::pin(std::future::ready(result))
        } else {
            Box::pin(async move {
                tokio::time::sleep(after).await;
                result
            })
        }
    }
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// 100 ms base, 1 s cap, doubling, no jitter, no budget, no total timeout, 5 attempts.
pub(crate) fn config(jitter: Jitter) -> RetryConfig {
    RetryConfig {
        max_attempts: 5,
        backoff: BackoffConfig {
            base: ms(100),
            cap: ms(1000),
            multiplier: 2.0,
            jitter,
        },
        budget: None,
        total_timeout: None,
        attempt_timeout: None,
    }
}

pub(crate) fn layer(config: RetryConfig) -> RetryLayer<TestPolicy> {
    RetryLayer::new(TestPolicy::default(), config).unwrap()
}

/// Sends one request through `service` and waits for the verdict.
pub(crate) async fn send<S>(service: &mut S, request: Req) -> Result<u32, TestError>
where
    S: Service<Req, Response = u32, Error = TestError>,
{
    service.ready().await?.call(request).await
}

/// [`send`], failing the test (instead of hanging it) if no verdict comes within an hour of
/// paused time.
pub(crate) async fn send_guarded<S>(service: &mut S, request: Req) -> Result<u32, TestError>
where
    S: Service<Req, Response = u32, Error = TestError>,
{
    tokio::time::timeout(Duration::from_secs(3_600), send(service, request))
        .await
        .expect("the layer never answered")
}
