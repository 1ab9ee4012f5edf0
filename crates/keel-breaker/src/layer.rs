//! The tower layer that wraps services in a [`CircuitBreaker`] sharing one [`Breaker`].

use tower_layer::Layer;

use crate::{Breaker, CircuitBreaker, NoFallback};

/// Wraps services in a [`CircuitBreaker`]; every service it wraps shares its [`Breaker`].
///
/// Build it with [`Breaker::layer`], [`Breaker::layer_with`] or
/// `Breaker::mongodb_layer` (feature `mongodb`).
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, BreakerState};
/// use tower::{Layer, service_fn};
///
/// let breaker = Breaker::new("cluster0", BreakerConfig::default())?;
/// let layer = breaker.layer();
/// // Every service the layer wraps shares the one circuit.
/// let users = layer.layer(service_fn(|_: ()| async { Ok::<_, std::io::Error>(()) }));
/// let orders = layer.layer(service_fn(|_: ()| async { Ok::<_, std::io::Error>(()) }));
/// breaker.force_open();
/// assert_eq!(users.breaker().state(), BreakerState::ForcedOpen);
/// assert_eq!(orders.breaker().state(), BreakerState::ForcedOpen);
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<P, F = NoFallback> {
    breaker: Breaker,
    policy: P,
    fallback: F,
}

impl<P> CircuitBreakerLayer<P> {
    /// A layer judging outcomes with `policy`, without fallback.
    pub fn new(breaker: Breaker, policy: P) -> Self {
        Self {
            breaker,
            policy,
            fallback: NoFallback,
        }
    }
}

impl<P, F> CircuitBreakerLayer<P, F> {
    /// Serves refused calls with `fallback` (see [`fallback_fn`](crate::fallback_fn) and
    /// [`fallback_service`](crate::fallback_service)).
    pub fn with_fallback<G>(self, fallback: G) -> CircuitBreakerLayer<P, G> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            policy: self.policy,
            fallback,
        }
    }

    /// The shared breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

impl<S, P: Clone, F: Clone> Layer<S> for CircuitBreakerLayer<P, F> {
    type Service = CircuitBreaker<S, P, F>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(
            inner,
            self.breaker.clone(),
            self.policy.clone(),
            self.fallback.clone(),
        )
    }
}
