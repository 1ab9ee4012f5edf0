//! The per-attempt time limit, as a layer that fails with `keel_core::Error::attempt_timeout`.
//!
//! tower's own `Timeout` would fit, but it boxes every error (`BoxError`), and the retry and
//! breaker policies below and above it need the classified `keel_core::Error` intact; this is
//! the same `tokio::time::timeout` without the boxing.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use futures_util::future::BoxFuture;
use keel_core::{Error, Operation};
use tower::{Layer, Service};

/// Bounds each attempt to `limit` (or the operation's remaining deadline, if sooner).
#[derive(Clone, Copy, Debug)]
pub struct AttemptTimeoutLayer {
    limit: Duration,
}

impl AttemptTimeoutLayer {
    /// A limit of `limit` per attempt.
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AttemptTimeout {
            inner,
            limit: self.limit,
        }
    }
}

/// See [`AttemptTimeoutLayer`].
#[derive(Clone, Debug)]
pub struct AttemptTimeout<S> {
    inner: S,
    limit: Duration,
}

impl<S> AttemptTimeout<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, T> Service<Operation<T>> for AttemptTimeout<S>
where
    S: Service<Operation<T>, Response = T, Error = Error>,
    S::Future: Send + 'static,
    T: Send + 'static,
{
    type Response = T;
    type Error = Error;
    type Future = BoxFuture<'static, Result<T, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let remaining = operation.remaining();
        let limit = remaining.map_or(self.limit, |left| left.min(self.limit));
        let past_deadline = remaining.is_some_and(|left| left < self.limit);
        let name = operation.name().to_owned();
        let attempt = self.inner.call(operation);
        Box::pin(async move {
            match tokio::time::timeout(limit, attempt).await {
                Ok(result) => result,
                Err(_) if past_deadline => Err(Error::deadline_exceeded(format!(
                    "`{name}` did not finish before its deadline"
                ))),
                Err(_) => Err(Error::attempt_timeout(limit)),
            }
        })
    }
}
