//! Keel's facade: a resilient MongoDB client composed of Keel's `tower` layers.
//!
//! The layers run in the order of [`LAYERS`] (drawn in the workspace's
//! `docs/architecture.md`). [`Keel::builder`] connects (validating the connection) and
//! composes the layers, each optional, with your own `tower` layers around the whole call or
//! around each attempt ([`KeelBuilder::layer_around_call`]); [`Keel::collection`] gives a typed [`Collection<T>`] whose methods build the right
//! [`Operation`] kind, so retry safety is automatic; [`Keel::run`] runs
//! any other operation. Every failure is a classified [`keel_core::Error`].
//!
//! | feature | default | layer |
//! |---|---|---|
//! | `retry` | yes | `keel-retry`: backoff with jitter, retry budget, deadline |
//! | `breaker` | yes | `keel-breaker`: fail fast while the database is down |
//! | `health` | no | `keel-health`: health monitor and alerts, a gate that fails fast while unhealthy, per-operation metrics; see `Keel::health` (a link would not resolve without the feature) |
//! | `full` | no | every layer |
//! | `axum` | no | [`http`] as axum responses and extractors |
//!
//! [`http`] maps every error to an HTTP answer (status, `Retry-After`, RFC 9457 problem
//! details), with or without axum.
//!
//! ```no_run
//! # async fn run() -> Result<(), keel_core::Error> {
//! use mongodb::bson::doc;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct User { _id: i64, name: String }
//!
//! let config = keel_config::KeelConfig::for_uri("mongodb://127.0.0.1:27017")?;
//! let keel = mongokeel::Keel::builder(config).build().await?;
//! let users = keel.collection::<User>("app", "users");
//! users.insert_one(User { _id: 1, name: "Ada".into() }).await?;
//! let ada = users.find_one(doc! { "_id": 1 }).await?;
//! assert_eq!(ada.map(|u| u.name).as_deref(), Some("Ada"));
//! # Ok(()) }
//! ```

mod assembly;
mod attempt_timeout;
mod builder;
mod collection;
#[cfg(feature = "health")]
mod health;
pub mod http;
mod keel;
mod layers;

pub use assembly::{AnyValue, KeelRequest, KeelService, LAYERS, UserLayer};
pub use attempt_timeout::{AttemptFuture, AttemptTimeout, AttemptTimeoutLayer};
pub use builder::KeelBuilder;
pub use collection::Collection;
pub use keel::Keel;

pub use keel_config::KeelConfig;
pub use keel_core::{Error, ErrorClass, Operation, OperationKind};
pub use keel_pool_core::{ConnectionState, ManagedClient, PoolStats};
