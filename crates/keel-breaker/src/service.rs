//! The circuit breaker service: admits, refuses (or falls back) and records each call.

use std::{
    fmt,
    task::{Context, Poll},
};

use tower_service::Service;

use crate::{
    Breaker, CircuitOpen, Fallback, NoFallback, Permit, Policy, future::ResponseFuture,
    policy::AnyError,
};

/// A service guarded by a circuit [`Breaker`].
///
/// `poll_ready` asks the breaker first: a refused call is ready at once (and fails or falls
/// back in `call`) instead of waiting on a dependency that is down.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, BreakerError};
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let breaker = Breaker::new("search", BreakerConfig::default()).unwrap();
/// let mut search = ServiceBuilder::new()
///     .layer(breaker.layer())
///     .service(service_fn(|q: &'static str| async move {
///         if q.is_empty() { Err("empty query") } else { Ok(q.len()) }
///     }));
///
/// assert_eq!(search.ready().await.unwrap().call("keel").await.unwrap(), 4);
///
/// breaker.force_open();
/// let err = search.ready().await.unwrap().call("keel").await.unwrap_err();
/// assert!(matches!(err, BreakerError::CircuitOpen { .. }));
/// # }
/// ```
pub struct CircuitBreaker<S, P = AnyError, F = NoFallback> {
    inner: S,
    breaker: Breaker,
    policy: P,
    fallback: F,
    /// Decided in `poll_ready`, consumed by `call`.
    admission: Option<Result<Permit, CircuitOpen>>,
}

impl<S, P, F> CircuitBreaker<S, P, F> {
    /// Guards `inner` with `breaker`.
    pub fn new(inner: S, breaker: Breaker, policy: P, fallback: F) -> Self {
        Self {
            inner,
            breaker,
            policy,
            fallback,
            admission: None,
        }
    }

    /// The shared breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, P: Clone, F: Clone> Clone for CircuitBreaker<S, P, F> {
    fn clone(&self) -> Self {
        // A clone must ask for its own admission.
        Self::new(
            self.inner.clone(),
            self.breaker.clone(),
            self.policy.clone(),
            self.fallback.clone(),
        )
    }
}

impl<S: fmt::Debug, P: fmt::Debug, F> fmt::Debug for CircuitBreaker<S, P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S, P, F, Req> Service<Req> for CircuitBreaker<S, P, F>
where
    S: Service<Req>,
    P: Policy<S::Response, S::Error> + Clone,
    F: Fallback<Req, S::Response, P::Error>,
{
    type Response = S::Response;
    type Error = P::Error;
    type Future = ResponseFuture<S::Future, P, F::Future, P::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let admission = self
            .admission
            .get_or_insert_with(|| self.breaker.acquire(false));
        if admission.is_err() {
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(error)) => {
                // The call never happens: its permit records nothing.
                self.admission = None;
                Poll::Ready(Err(self.policy.error(error)))
            }
            other => other.map_err(|e| self.policy.error(e)),
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let admission = self
            .admission
            .take()
            .unwrap_or_else(|| self.breaker.acquire(false));
        match admission {
            Ok(mut permit) => {
                permit.start_clock();
                let future = self.inner.call(request);
                ResponseFuture::called(future, permit, self.policy.clone())
            }
            Err(open) => match self.fallback.fallback(request, open) {
                Some(future) => ResponseFuture::fallback(future),
                None => ResponseFuture::rejected(self.policy.rejected(open)),
            },
        }
    }
}
