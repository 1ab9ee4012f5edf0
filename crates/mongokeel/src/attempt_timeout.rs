//! The per-attempt time limit, as a layer that fails with `keel_core::Error::attempt_timeout`.
//!
//! tower's own `Timeout` would fit, but it boxes every error (`BoxError`), and the retry and
//! breaker policies below and above it need the classified `keel_core::Error` intact; this is
//! the same `tokio::time::timeout` without the boxing.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use keel_core::{Error, Operation, OperationName};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Timeout};
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
{
    type Response = T;
    type Error = Error;
    type Future = AttemptFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        // One clock read: the clock costs more than the rest of this layer.
        let now = Instant::now();
        let by_limit = now + self.limit;
        let (ends_at, past_deadline) = match operation.deadline() {
            // At a tie the deadline is the news: no retry can follow.
            Some(deadline) if deadline <= by_limit => (deadline, true),
            _ => (by_limit, false),
        };
        let name = operation.label().clone();
        AttemptFuture {
            attempt: tokio::time::timeout_at(ends_at, self.inner.call(operation)),
            name,
            limit: ends_at.saturating_duration_since(now),
            past_deadline,
        }
    }
}

pin_project! {
    /// The future of [`AttemptTimeout`]: the attempt and its timer, in place (no allocation).
    #[must_use = "futures do nothing unless polled"]
    pub struct AttemptFuture<F> {
        #[pin]
        attempt: Timeout<F>,
        name: OperationName,
        limit: Duration,
        // The timer ends at the operation's deadline rather than at the attempt limit.
        past_deadline: bool,
    }
}

impl<F, T> Future for AttemptFuture<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match ready!(this.attempt.poll(cx)) {
            Ok(result) => result,
            Err(_) if *this.past_deadline => Err(Error::deadline_exceeded(format!(
                "`{}` did not finish before its deadline",
                this.name
            ))),
            Err(_) => Err(Error::attempt_timeout(*this.limit)),
        })
    }
}

impl<F> std::fmt::Debug for AttemptFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptFuture")
            .field("operation", &self.name)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keel_core::{ErrorKind, Operation};
    use tokio::time::Instant;
    use tower::{Layer, ServiceExt, service_fn, util::BoxCloneService};

    use super::AttemptTimeoutLayer;

    /// A service whose attempts take `takes`.
    fn taking(takes: Duration) -> BoxCloneService<Operation<u32>, u32, keel_core::Error> {
        BoxCloneService::new(service_fn(move |_op: Operation<u32>| async move {
            tokio::time::sleep(takes).await;
            Ok(7)
        }))
    }

    fn op() -> Operation<u32> {
        Operation::read("test.items.find_one", |_client| async { Ok(0) })
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_within_the_limit_answers() {
        let service =
            AttemptTimeoutLayer::new(Duration::from_secs(5)).layer(taking(Duration::from_secs(4)));
        assert_eq!(service.oneshot(op()).await.unwrap(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_over_the_limit_is_an_attempt_timeout() {
        let service = AttemptTimeoutLayer::new(Duration::from_secs(5)).layer(taking(Duration::MAX));
        let start = Instant::now();
        let op = op().with_timeout(Duration::from_secs(60));
        let err = service.oneshot(op).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AttemptTimeout);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_before_the_limit_ends_the_attempt_at_the_deadline() {
        let service = AttemptTimeoutLayer::new(Duration::from_secs(5)).layer(taking(Duration::MAX));
        let start = Instant::now();
        let op = op().with_timeout(Duration::from_secs(2));
        let err = service.oneshot(op).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
        assert!(err.to_string().contains("test.items.find_one"), "{err}");
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
