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
use tokio::time::Instant;
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
        // One clock read: the clock costs more than the rest of this layer.
        let now = Instant::now();
        let by_limit = now + self.limit;
        let (ends_at, past_deadline) = match operation.deadline() {
            Some(deadline) if deadline < by_limit => (deadline, true),
            _ => (by_limit, false),
        };
        let limit = ends_at.saturating_duration_since(now);
        let name = operation.label().clone();
        let attempt = self.inner.call(operation);
        Box::pin(async move {
            match tokio::time::timeout_at(ends_at, attempt).await {
                Ok(result) => result,
                Err(_) if past_deadline => Err(Error::deadline_exceeded(format!(
                    "`{name}` did not finish before its deadline"
                ))),
                Err(_) => Err(Error::attempt_timeout(limit)),
            }
        })
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
