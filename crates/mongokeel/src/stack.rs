//! The tower stack, in the order of the design notes:
//! `[CircuitBreaker] → [Retry] → [attempt timeout] → [checkout wait limit] → MongoService`.

use keel_config::KeelConfig;
use keel_pool_core::{CheckoutLimit, CheckoutLimitLayer, ManagedClient, MongoService};
use tower::{Layer, util::Either};

use crate::attempt_timeout::{AttemptTimeout, AttemptTimeoutLayer};

/// The layers every stack has: attempt timeout, checkout limit, the driver.
pub(crate) type Core = AttemptTimeout<CheckoutLimit<MongoService>>;

#[cfg(feature = "retry")]
pub(crate) type Retried = Either<keel_retry::Retry<Core, keel_retry::MongoPolicy>, Core>;
#[cfg(not(feature = "retry"))]
pub(crate) type Retried = Core;

#[cfg(feature = "breaker")]
pub(crate) type Stack =
    Either<keel_breaker::CircuitBreaker<Retried, keel_breaker::MongoPolicy>, Retried>;
#[cfg(not(feature = "breaker"))]
pub(crate) type Stack = Retried;

/// Which optional layers to build.
#[derive(Clone, Debug)]
pub(crate) struct Choices {
    #[cfg(feature = "retry")]
    pub(crate) retry: Option<keel_retry::RetryLayer<keel_retry::MongoPolicy>>,
    #[cfg(feature = "breaker")]
    pub(crate) breaker: Option<keel_breaker::Breaker>,
}

pub(crate) fn build(config: &KeelConfig, client: &ManagedClient, choices: &Choices) -> Stack {
    let core = AttemptTimeoutLayer::new(config.timeouts.attempt)
        .layer(CheckoutLimitLayer::from_config(config).layer(MongoService::new(client.clone())));
    #[cfg(feature = "retry")]
    let retried: Retried = match &choices.retry {
        Some(retry) => Either::Left(retry.layer(core)),
        None => Either::Right(core),
    };
    #[cfg(not(feature = "retry"))]
    let retried: Retried = core;
    #[cfg(feature = "breaker")]
    let stack: Stack = match &choices.breaker {
        Some(breaker) => Either::Left(breaker.mongodb_layer().layer(retried)),
        None => Either::Right(retried),
    };
    #[cfg(not(feature = "breaker"))]
    let stack: Stack = retried;
    let _ = choices;
    stack
}
