//! The assembly: the one place that knows the order of Keel's layers, where the user's layers
//! go, and the deadline every layer works to.
//!
//! The order is [`LAYERS`]; `docs/architecture.md` draws it, and a test fails when the drawing
//! and this list differ. Optional layers are run-time choices (`Option`); cargo features only
//! decide which crates are compiled in (see `optional`).
//!
//! Mechanism: the caller's `Operation<T>` is erased to an [`KeelRequest`] (answering an
//! [`AnyValue`]), so every layer, Keel's or the user's, is one service type and the stack's
//! type is inferred, never written. The whole stack sits behind one pointer (one boxed future
//! per call); user layers are boxed ([`KeelService`]) only where some were added.

mod erased;
mod optional;
#[cfg(feature = "retry")]
mod retry;
mod user;

use keel_config::KeelConfig;
use keel_core::{Error, Operation};
use keel_pool_core::{ManagedClient, MongoService};
use tokio::time::Instant;
use tower::ServiceBuilder;

pub use self::erased::{AnyValue, KeelRequest, KeelService};
pub use self::user::UserLayer;
pub(crate) use self::{
    erased::{Stack, TypedRequest},
    optional::{BreakerStage, GateStage, MetricsStage, RetryStage},
    user::UserLayers,
};
use crate::attempt_timeout::AttemptTimeoutLayer;

/// Keel's stack from the caller down, outermost first, as `KeelBuilder::build` assembles it.
/// Optional layers are left out of a stack built without them.
pub const LAYERS: [&str; 10] = [
    "layers around the call",
    "operation metrics",
    "health gate",
    "circuit breaker",
    "retry",
    "layers around each attempt",
    "attempt timeout",
    "checkout wait limit",
    "MongoService",
    "mongodb::Client",
];

/// The layers a `Keel` is built with.
#[derive(Debug, Default)]
pub(crate) struct Assembly {
    pub(crate) around_call: UserLayers,
    pub(crate) metrics: Option<MetricsStage>,
    pub(crate) gate: Option<GateStage>,
    pub(crate) breaker: Option<BreakerStage>,
    pub(crate) retry: Option<RetryStage>,
    pub(crate) around_attempt: UserLayers,
}

impl Assembly {
    /// The stack, in the order of [`LAYERS`].
    pub(crate) fn assemble(self, config: &KeelConfig, client: &ManagedClient) -> Stack {
        let attempts = self.around_attempt.wrap(
            ServiceBuilder::new()
                .layer(AttemptTimeoutLayer::new(config.timeouts.attempt))
                .layer(crate::layers::checkout_limit(config))
                .service(MongoService::new(client.clone())),
        );
        let call = ServiceBuilder::new()
            .option_layer(self.metrics)
            .option_layer(self.gate)
            .option_layer(self.breaker)
            .option_layer(self.retry)
            .service(attempts);
        Stack::new(self.around_call.wrap(call))
    }
}

/// The one deadline of a call starting now: the operation's own or the configured
/// `timeouts.deadline` from now, whichever is sooner. It travels in the request; the retry
/// layer, the attempt timeout, the checkout limit and the reconnect queue all read it there.
pub(crate) fn deadline<T>(operation: &Operation<T>, config: &KeelConfig) -> Instant {
    let latest = Instant::now() + config.timeouts.deadline;
    operation
        .deadline()
        .map_or(latest, |deadline| deadline.min(latest))
}

/// Runs `operation` through `stack` to its deadline, and gives the caller's value back.
pub(crate) async fn run<T: Send + 'static>(
    stack: &Stack,
    config: &KeelConfig,
    operation: Operation<T>,
) -> Result<T, Error> {
    let deadline = deadline(&operation, config);
    let name = operation.label().clone();
    let value = stack.call(erased::erase(operation, deadline)).await?;
    erased::restore(value, &name)
}

/// Runs an operation built as the stack's request through `stack` to its deadline, and gives
/// the caller's value back: [`run`] without erasing an `Operation<T>` first.
pub(crate) async fn run_typed<T: 'static>(
    stack: &Stack,
    config: &KeelConfig,
    operation: TypedRequest<T>,
) -> Result<T, Error> {
    let request = operation.request;
    let deadline = deadline(&request, config);
    let name = request.label().clone();
    let value = stack.call(request.with_deadline(deadline)).await?;
    erased::restore(value, &name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::LAYERS;

    /// The layers the stack diagram of `docs/architecture.md` shows, caller first.
    fn drawn_layers() -> Vec<String> {
        let doc = include_str!("../../../../docs/architecture.md");
        let section = doc
            .split("## Bird's-eye view")
            .nth(1)
            .expect("docs/architecture.md has a \"Bird's-eye view\" section");
        let diagram = section
            .split("```")
            .nth(1)
            .expect("the section opens with the stack diagram in a code block");
        diagram
            .split("─►")
            .map(|box_| box_.trim().trim_start_matches('[').trim_end_matches(']'))
            .filter(|name| *name != "caller")
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_architecture_diagram_shows_the_assembled_order() {
        assert_eq!(
            drawn_layers(),
            LAYERS,
            "docs/architecture.md's stack diagram and assembly::LAYERS differ: change both"
        );
    }
}
