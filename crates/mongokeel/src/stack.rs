//! The tower stack, in the order of the design notes: `[operation metrics] → [HealthGate] →
//! [CircuitBreaker] → [Retry] → [attempt timeout] → [checkout wait limit] → MongoService`.

use keel_config::KeelConfig;
use keel_pool_core::{CheckoutLimit, ManagedClient, MongoService};
use tower::Layer;
#[cfg(any(feature = "retry", feature = "breaker", feature = "health"))]
use tower::util::Either;

use crate::attempt_timeout::{AttemptTimeout, AttemptTimeoutLayer};

/// The layers every stack has: attempt timeout, checkout limit, the driver.
pub(crate) type Core = AttemptTimeout<CheckoutLimit<MongoService>>;

#[cfg(feature = "retry")]
pub(crate) type Retried = Either<keel_retry::Retry<Core, keel_retry::MongoPolicy>, Core>;
#[cfg(not(feature = "retry"))]
pub(crate) type Retried = Core;

#[cfg(feature = "breaker")]
pub(crate) type Guarded =
    Either<keel_breaker::CircuitBreaker<Retried, keel_breaker::MongoPolicy>, Retried>;
#[cfg(not(feature = "breaker"))]
pub(crate) type Guarded = Retried;

#[cfg(feature = "health")]
pub(crate) type Stack =
    keel_health::metrics::OperationMetrics<Either<keel_health::HealthGate<Guarded>, Guarded>>;
#[cfg(not(feature = "health"))]
pub(crate) type Stack = Guarded;

/// Which optional layers to build.
#[derive(Clone, Debug)]
pub(crate) struct Choices {
    #[cfg(feature = "retry")]
    pub(crate) retry: Option<keel_retry::RetryLayer<keel_retry::MongoPolicy>>,
    #[cfg(feature = "breaker")]
    pub(crate) breaker: Option<keel_breaker::Breaker>,
    /// The gate over the monitor's reports, when the stack has one.
    #[cfg(feature = "health")]
    pub(crate) gate: Option<keel_health::HealthGateLayer>,
    /// Where the operation metrics layer also counts, for the monitor and the dashboard.
    #[cfg(feature = "health")]
    pub(crate) operations: keel_health::OperationStats,
}

pub(crate) fn build(config: &KeelConfig, client: &ManagedClient, choices: &Choices) -> Stack {
    let core = AttemptTimeoutLayer::new(config.timeouts.attempt)
        .layer(crate::layers::checkout_limit(config).layer(MongoService::new(client.clone())));
    #[cfg(feature = "retry")]
    let retried: Retried = match &choices.retry {
        Some(retry) => Either::Left(retry.layer(core)),
        None => Either::Right(core),
    };
    #[cfg(not(feature = "retry"))]
    let retried: Retried = core;
    #[cfg(feature = "breaker")]
    let guarded: Guarded = match &choices.breaker {
        Some(breaker) => Either::Left(breaker.mongodb_layer().layer(retried)),
        None => Either::Right(retried),
    };
    #[cfg(not(feature = "breaker"))]
    let guarded: Guarded = retried;
    #[cfg(feature = "health")]
    let stack: Stack = {
        let gated = match &choices.gate {
            Some(gate) => Either::Left(gate.layer(guarded)),
            None => Either::Right(guarded),
        };
        keel_health::OperationMetricsLayer::new()
            .with_stats(choices.operations.clone())
            .layer(gated)
    };
    #[cfg(not(feature = "health"))]
    let stack: Stack = guarded;
    let _ = choices;
    stack
}
