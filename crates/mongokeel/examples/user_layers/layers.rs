//! Two layers a user might put into Keel's stack: a per-process rate limit that fails fast
//! with `Overloaded` and a `retry_after`, and a log line per call or per attempt.

use std::{
    num::NonZeroU32,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use futures_util::future::{BoxFuture, Either, Ready, ready};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter, clock::Clock};
use keel_core::{Error, Operation};
use tower::{Layer, Service};

/// At most `per_second` calls a second for the whole process (clones share the limiter).
///
/// tower's `RateLimit` does not fit here: it waits in `poll_ready` instead of failing, and
/// each clone of it counts on its own, so a cloned stack would not limit the process.
#[derive(Clone, Debug)]
pub(crate) struct RateLimitLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl RateLimitLayer {
    /// A limit of `per_second` calls a second, all of them allowed at once.
    #[allow(
        dead_code,
        reason = "the example uses one constructor, the test the other"
    )]
    pub(crate) fn per_second(per_second: NonZeroU32) -> Self {
        Self {
            limiter: Arc::new(RateLimiter::direct(Quota::per_second(per_second))),
        }
    }

    /// A limit of `per_minute` calls a minute.
    #[allow(
        dead_code,
        reason = "the example uses one constructor, the test the other"
    )]
    pub(crate) fn per_minute(per_minute: NonZeroU32) -> Self {
        Self {
            limiter: Arc::new(RateLimiter::direct(Quota::per_minute(per_minute))),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            limiter: Arc::clone(&self.limiter),
        }
    }
}

/// See [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub(crate) struct RateLimited<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl<S, T> Service<Operation<T>> for RateLimited<S>
where
    S: Service<Operation<T>, Error = Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = Either<S::Future, Ready<Result<S::Response, Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        match self.limiter.check() {
            Ok(()) => Either::Left(self.inner.call(operation)),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Either::Right(ready(Err(Error::overloaded(
                    format!(
                        "`{}` was refused: the process's rate limit is reached",
                        operation.name()
                    ),
                    Some(wait),
                ))))
            }
        }
    }
}

/// Logs each call (or attempt, at the attempt point) with its outcome, and keeps the lines.
#[derive(Clone, Debug)]
pub(crate) struct CallLogLayer {
    point: &'static str,
    lines: Arc<Mutex<Vec<String>>>,
}

impl CallLogLayer {
    /// A log for `point` (`"call"`, `"attempt"`).
    pub(crate) fn new(point: &'static str) -> Self {
        Self {
            point,
            lines: Arc::default(),
        }
    }

    /// The lines logged so far: `"<point> <operation> ok"` or `"<point> <operation> <error class>"`.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl<S> Layer<S> for CallLogLayer {
    type Service = CallLog<S>;

    fn layer(&self, inner: S) -> CallLog<S> {
        CallLog {
            inner,
            log: self.clone(),
        }
    }
}

/// See [`CallLogLayer`].
#[derive(Clone, Debug)]
pub(crate) struct CallLog<S> {
    inner: S,
    log: CallLogLayer,
}

impl<S, T> Service<Operation<T>> for CallLog<S>
where
    S: Service<Operation<T>, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = BoxFuture<'static, Result<S::Response, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let name = operation.label().clone();
        let log = self.log.clone();
        let answer = self.inner.call(operation);
        Box::pin(async move {
            let result = answer.await;
            let outcome = match &result {
                Ok(_) => "ok".to_owned(),
                Err(error) => error.class().as_str().to_owned(),
            };
            tracing::info!(point = log.point, operation = %name, %outcome, "keel call");
            log.lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("{} {name} {outcome}", log.point));
            result
        })
    }
}
