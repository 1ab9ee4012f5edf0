//! [`Retry`]: the service that runs a request again when its policy allows.

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::time::Instant;
use tower_service::Service;

use crate::{Policy, RetryLayer, future::ResponseFuture, layer::Shared};

/// Wraps a service and retries its failed calls; built by [`RetryLayer`].
///
/// Requests must be `Clone` (each attempt sends a copy) and the inner service too (a retry
/// waits for the copy to be ready, as `tower::retry` does).
///
/// ```
/// use keel_retry::{Retry, RetryConfig, RetryIf, RetryLayer};
/// use tower::service_fn;
///
/// let layer = RetryLayer::new(RetryIf::new(|_: &std::io::Error| true), RetryConfig::default())?;
/// let echo = service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) });
/// let service: Retry<_, _> = Retry::new(echo, &layer);
/// let _inner = service.into_inner();
/// # Ok::<(), keel_retry::ConfigError>(())
/// ```
pub struct Retry<S, P> {
    inner: S,
    shared: Arc<Shared<P>>,
}

impl<S, P> Retry<S, P> {
    /// Wraps `inner` with the settings of `layer`, sharing its budget.
    pub fn new(inner: S, layer: &RetryLayer<P>) -> Self
    where
        P: Clone,
    {
        Self::from_shared(inner, layer.shared())
    }

    pub(crate) fn from_shared(inner: S, shared: Arc<Shared<P>>) -> Self {
        Self { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, P> Clone for Retry<S, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, P> fmt::Debug for Retry<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, P, Req> Service<Req> for Retry<S, P>
where
    S: Service<Req> + Clone,
    Req: Clone,
    P: Policy<Req, S::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, Req, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let requested = shared.policy.deadline(&request);
        // Read at most once, and only if something needs it: the clock is a good part of the
        // layer's cost in front of a fast service.
        let needs_clock =
            shared.budget.is_some() || shared.total_timeout.is_some() || requested.is_some();
        let now = needs_clock.then(Instant::now);
        if let (Some(budget), Some(now)) = (&shared.budget, now) {
            budget.deposit_at(now);
        }
        let deadline = match (shared.total_timeout, now) {
            (Some(total), Some(now)) => {
                let by_config = now + total;
                Some(requested.map_or(by_config, |requested| requested.min(by_config)))
            }
            _ => requested,
        };
        if let (Some(deadline), Some(now)) = (deadline, now)
            && deadline <= now
            && let Some(error) = shared.policy.reject_expired(&request)
        {
            return ResponseFuture::rejected(error, request, self.inner.clone(), shared);
        }
        // The ready service takes this attempt; a clone (readied again later) takes retries.
        shared.stats.attempt_started();
        let first = self.inner.call(request.clone());
        ResponseFuture::new(first, request, self.inner.clone(), shared, deadline)
    }
}
