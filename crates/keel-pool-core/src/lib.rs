//! The managed MongoDB client at the heart of Keel, and the innermost `Service`.
//!
//! * [`ManagedClient`] builds the driver client, validates the connection at start-up (with
//!   retry and backoff), follows a [`ConnectionState`] machine driven by the driver's SDAM and
//!   CMAP events and by operation outcomes, counts [pool metrics](PoolMetrics) from CMAP events,
//!   can [`reset`](ManagedClient::reset) its driver client and
//!   [shut down gracefully](ManagedClient::shutdown).
//! * [`MongoService`] runs [`keel_core::Operation`]s, holding them in a bounded queue while
//!   reconnecting instead of letting each wait the driver's 30 s server selection: through an
//!   election (a member answers, no primary) up to `reconnect_wait`, through an outage (every
//!   member's last check failed, [`ConnectionState::Unreachable`]) only up to `outage_grace`,
//!   then failing fast as `Unavailable`.
//! * [`CheckoutLimitLayer`] bounds how long a request waits to start, failing fast with
//!   `Overloaded` (the driver's `waitQueueTimeoutMS` is unsupported).
//!
//! ```no_run
//! # async fn run() -> Result<(), keel_core::Error> {
//! use std::time::Duration;
//! use keel_core::Operation;
//! use keel_pool_core::{CheckoutLimitLayer, ManagedClient, ManagedSettings, MongoService};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let options = mongodb::options::ClientOptions::parse("mongodb://127.0.0.1:27017").await?;
//! let client = ManagedClient::connect_with(options, ManagedSettings::default()).await?;
//! let service = ServiceBuilder::new()
//!     .layer(CheckoutLimitLayer::new(10, Duration::from_millis(200)))
//!     .service(MongoService::new(client.clone()));
//! let ping = Operation::command("admin.ping", true, |c: mongodb::Client| async move {
//!     c.database("admin").run_command(mongodb::bson::doc! { "ping": 1 }).await
//! });
//! service.oneshot(ping).await?;
//! client.shutdown().await;
//! # Ok(()) }
//! ```

mod checkout_limit;
mod client;
mod config;
mod in_flight;
mod pool_metrics;
mod service;
mod settings;
mod state;
mod topology;
mod waiting;

pub use checkout_limit::{CheckoutFuture, CheckoutLimit, CheckoutLimitLayer};
pub use client::{ManagedClient, ResetRefused, ShutdownReport};
pub use config::{PoolSettings, SettingError};
pub use pool_metrics::{PoolMetrics, PoolStats, names as metric_names};
pub use service::{MongoFuture, MongoService};
pub use settings::ManagedSettings;
pub use state::ConnectionState;
