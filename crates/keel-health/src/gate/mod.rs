//! `HealthGateLayer`: fail fast (or hold briefly in a bounded queue) while health is
//! `Unhealthy`, so requests do not pile up on a dead database.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use keel_health::{GateError, HealthGateLayer, HealthReport, HealthStatus};
//! use keel_pool_core::ConnectionState;
//! use tokio::sync::watch;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! let mut report = HealthReport::starting(ConnectionState::Reconnecting, None);
//! report.status = HealthStatus::Unhealthy;
//! let (_health, receiver) = watch::channel(report);
//! let service = ServiceBuilder::new()
//!     .layer(HealthGateLayer::from_receiver(receiver, Duration::from_secs(5)))
//!     .service(service_fn(|n: u32| async move { Ok::<_, GateError>(n) }));
//! let refused = service.oneshot(1).await.unwrap_err();
//! assert!(matches!(refused, GateError::Unhealthy { .. }));
//! # }
//! ```

mod error;
mod future;
mod layer;
mod service;

pub use error::GateError;
pub use future::ResponseFuture;
pub use layer::{GateMode, HealthGateLayer};
pub use service::HealthGate;
