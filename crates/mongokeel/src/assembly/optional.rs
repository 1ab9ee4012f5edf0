//! The optional layers' types: the real layer when its crate is compiled in, else [`Off`], a
//! type with no value, so an `Option` of it is always `None` and the assembly composes every
//! layer the same way whatever the features.

use tower::Layer;

#[cfg(feature = "retry")]
pub(crate) use super::retry::RetryStage;
#[cfg(not(feature = "retry"))]
pub(crate) use Off as RetryStage;

#[cfg(feature = "breaker")]
pub(crate) type BreakerStage = keel_breaker::CircuitBreakerLayer<keel_breaker::MongoPolicy>;
#[cfg(not(feature = "breaker"))]
pub(crate) use Off as BreakerStage;

#[cfg(feature = "health")]
pub(crate) use keel_health::{HealthGateLayer as GateStage, OperationMetricsLayer as MetricsStage};
#[cfg(not(feature = "health"))]
pub(crate) use {Off as GateStage, Off as MetricsStage};

/// A layer whose crate is not compiled in: it has no value, so it is never built.
#[allow(dead_code, reason = "used only by builds without some layer's crate")]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Off {}

impl<S> Layer<S> for Off {
    type Service = S;

    fn layer(&self, _inner: S) -> S {
        match *self {}
    }
}
