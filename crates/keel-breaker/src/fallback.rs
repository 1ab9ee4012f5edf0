//! Fallbacks: degraded responses (stale cache, default value, queued write) while the circuit is open.

use std::future::{Future, Ready};

use tower::util::Oneshot;
use tower_service::Service;

use crate::CircuitOpen;

/// Serves a request the open circuit refused, or declines it (the caller then gets the
/// policy's rejection error).
pub trait Fallback<Req, Res, Err> {
    /// The degraded response.
    type Future: Future<Output = Result<Res, Err>>;

    /// A future for the degraded response, or `None` to let the rejection through (for
    /// instance: serve reads from a cache, but never pretend a write succeeded).
    fn fallback(&mut self, request: Req, open: CircuitOpen) -> Option<Self::Future>;
}

/// No fallback: refused calls fail with the policy's rejection error.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFallback;

impl<Req, Res, Err> Fallback<Req, Res, Err> for NoFallback {
    type Future = Ready<Result<Res, Err>>;

    fn fallback(&mut self, _request: Req, _open: CircuitOpen) -> Option<Self::Future> {
        None
    }
}

/// A fallback closure; build it with [`fallback_fn`].
#[derive(Clone, Copy, Debug)]
pub struct FallbackFn<F> {
    f: F,
}

/// A fallback calling `f(request, rejection)` for every refused call.
///
/// ```
/// use keel_breaker::{CircuitOpen, fallback_fn};
///
/// // Serve a default value while the circuit is open.
/// let fallback = fallback_fn(|_query: &'static str, _open: CircuitOpen| async {
///     Ok::<_, std::io::Error>(Vec::<String>::new())
/// });
/// # let _ = fallback;
/// ```
pub fn fallback_fn<F>(f: F) -> FallbackFn<F> {
    FallbackFn { f }
}

impl<F, Fut, Req, Res, Err> Fallback<Req, Res, Err> for FallbackFn<F>
where
    F: FnMut(Req, CircuitOpen) -> Fut,
    Fut: Future<Output = Result<Res, Err>>,
{
    type Future = Fut;

    fn fallback(&mut self, request: Req, open: CircuitOpen) -> Option<Self::Future> {
        Some((self.f)(request, open))
    }
}

/// A fallback tower service (a cache, a replica in another region); build it with
/// [`fallback_service`].
#[derive(Clone, Copy, Debug)]
pub struct FallbackService<S> {
    service: S,
}

/// A fallback sending each refused request to (a clone of) `service`, which must have the
/// same response and error types as the breaker service.
pub fn fallback_service<S>(service: S) -> FallbackService<S> {
    FallbackService { service }
}

impl<S, Req, Res, Err> Fallback<Req, Res, Err> for FallbackService<S>
where
    S: Service<Req, Response = Res, Error = Err> + Clone,
{
    type Future = Oneshot<S, Req>;

    fn fallback(&mut self, request: Req, _open: CircuitOpen) -> Option<Self::Future> {
        Some(Oneshot::new(self.service.clone(), request))
    }
}
