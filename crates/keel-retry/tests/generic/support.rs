//! A scripted mock service, a test request/error pair and the policy over them.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_retry::{BackoffConfig, Decision, Jitter, Policy, RetryConfig, RetryLayer, StopReason};
use tokio::time::Instant;
use tower::{Service, ServiceExt, service_fn, util::ServiceFn};

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
}

impl Policy<Req, TestError> for TestPolicy {
    fn decide(&self, _request: &Req, error: &TestError) -> Decision {
        match error.kind {
            Kind::Transient => Decision::RETRY,
            Kind::Hinted(at_least) => Decision::Retry {
                at_least: Some(at_least),
            },
            Kind::Fatal | Kind::Expired => Decision::Stop,
        }
    }

    fn deadline(&self, request: &Req) -> Option<Instant> {
        request.deadline
    }

    fn reject_expired(&self, _request: &Req) -> Option<TestError> {
        self.reject_expired.then(|| TestError::new(Kind::Expired))
    }

    fn on_give_up(&self, mut error: TestError, attempts: u32, reason: StopReason) -> TestError {
        error.attempts = Some(attempts);
        error.reason = Some(reason);
        error
    }
}

/// Answers from a script (then keeps failing with the last default) and records when it was
/// called.
#[derive(Clone, Default)]
pub(crate) struct Script {
    outcomes: Arc<Mutex<VecDeque<Result<u32, Kind>>>>,
    calls: Arc<Mutex<Vec<Instant>>>,
}

impl Script {
    pub(crate) fn new(outcomes: impl IntoIterator<Item = Result<u32, Kind>>) -> Self {
        Self {
            outcomes: Arc::new(Mutex::new(outcomes.into_iter().collect())),
            calls: Arc::default(),
        }
    }

    /// Fails with a transient error forever.
    pub(crate) fn always_failing() -> Self {
        Self::new([])
    }

    pub(crate) fn service(
        &self,
    ) -> ServiceFn<impl FnMut(Req) -> std::future::Ready<Result<u32, TestError>> + Clone> {
        let script = self.clone();
        service_fn(move |_req: Req| {
            script.calls.lock().unwrap().push(Instant::now());
            let next = script.outcomes.lock().unwrap().pop_front();
            std::future::ready(match next {
                Some(Ok(n)) => Ok(n),
                Some(Err(kind)) => Err(TestError::new(kind)),
                None => Err(TestError::new(Kind::Transient)),
            })
        })
    }

    /// When each call happened, relative to `start`.
    pub(crate) fn offsets(&self, start: Instant) -> Vec<Duration> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|t| *t - start)
            .collect()
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
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
