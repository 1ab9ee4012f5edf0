//! Keel's layer crates without the facade: keel-breaker over keel-retry over pool-core's
//! `MongoService`, in a plain `tower::ServiceBuilder`, as a consumer composes them into its own
//! middleware stack. Each crate works alone; `mongokeel` is only one way to put them together.
//!
//! ```no_run
//! # async fn run(client: keel_pool_core::ManagedClient) -> Result<(), Box<dyn std::error::Error>> {
//! use keel_breaker::{Breaker, BreakerConfig};
//! use keel_core::Operation;
//! use keel_retry::{RetryConfig, RetryLayer};
//! use tower::ServiceExt;
//!
//! let breaker = Breaker::new("orders-db", BreakerConfig::default())?;
//! let retry = RetryLayer::mongodb(RetryConfig::default())?;
//! let ping = Operation::command("admin.ping", true, |c: mongodb::Client| async move {
//!     c.database("admin").run_command(mongodb::bson::doc! { "ping": 1 }).await
//! });
//! let reply = keel_plain_tower::stack(client, &breaker, &retry).oneshot(ping).await?;
//! # Ok(()) }
//! ```

use keel_breaker::Breaker;
use keel_core::{Error, Operation};
use keel_pool_core::{ManagedClient, MongoService};
use keel_retry::{MongoPolicy, RetryLayer};
use tower::{Service, ServiceBuilder};

/// `breaker` ─► `retry` ─► `MongoService` over `client`: the breaker sees each call once, the
/// retry layer each attempt, and every error is a classified `keel_core::Error`.
///
/// Without an attempt timeout below it, the retry layer itself ends a call at the operation's
/// deadline (set one with `Operation::with_timeout`).
pub fn stack<T: Send + 'static>(
    client: ManagedClient,
    breaker: &Breaker,
    retry: &RetryLayer<MongoPolicy>,
) -> impl Service<Operation<T>, Response = T, Error = Error> + Clone + Send + Sync + 'static {
    ServiceBuilder::new()
        .layer(breaker.mongodb_layer())
        .layer(retry.clone())
        .service(MongoService::new(client))
}
