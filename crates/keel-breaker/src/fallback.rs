//! Fallbacks: degraded responses (stale cache, default value, queued write) while the circuit is open.

use std::future::{Future, Ready};

use tower::util::Oneshot;
use tower_service::Service;

use crate::CircuitOpen;

/// Serves a request the open circuit refused, or declines it (the caller then gets the
/// policy's rejection error).
///
/// ```
/// use keel_breaker::{BreakerError, CircuitOpen, Fallback};
/// use std::future::{Ready, ready};
///
/// /// Serves reads from a (here: constant) cache; never pretends a write succeeded.
/// #[derive(Clone)]
/// struct CachedReads;
///
/// enum Query { Read(&'static str), Write(&'static str) }
///
/// impl Fallback<Query, String, BreakerError<std::io::Error>> for CachedReads {
///     type Future = Ready<Result<String, BreakerError<std::io::Error>>>;
///
///     fn fallback(&mut self, query: Query, _open: CircuitOpen) -> Option<Self::Future> {
///         match query {
///             Query::Read(key) => Some(ready(Ok(format!("cached {key}")))),
///             Query::Write(_) => None,
///         }
///     }
/// }
/// # let _ = CachedReads;
/// ```
pub trait Fallback<Req, Res, Err> {
    /// The degraded response.
    type Future: Future<Output = Result<Res, Err>>;

    /// A future for the degraded response, or `None` to let the rejection through (for
    /// instance: serve reads from a cache, but never pretend a write succeeded).
    fn fallback(&mut self, request: Req, open: CircuitOpen) -> Option<Self::Future>;
}

/// No fallback: refused calls fail with the policy's rejection error.
///
/// ```
/// use keel_breaker::{CircuitOpen, Fallback, NoFallback};
/// use std::time::Duration;
///
/// let declined = Fallback::<(), (), ()>::fallback(&mut NoFallback, (), CircuitOpen::new(Duration::ZERO));
/// assert!(declined.is_none());
/// ```
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use keel_breaker::{Breaker, BreakerConfig, BreakerError, fallback_service};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// let breaker = Breaker::new("profiles", BreakerConfig::default()).unwrap();
/// let replica = service_fn(|id: u32| async move { Ok::<_, BreakerError<&str>>(format!("stale {id}")) });
/// let primary = service_fn(|id: u32| async move { Ok::<_, &str>(format!("fresh {id}")) });
/// let profiles = breaker.layer().with_fallback(fallback_service(replica)).layer(primary);
///
/// breaker.force_open();
/// assert_eq!(profiles.oneshot(7).await.unwrap(), "stale 7");
/// # }
/// ```
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
