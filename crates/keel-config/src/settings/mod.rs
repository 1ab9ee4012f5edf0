//! The sections of a [`KeelConfig`](crate::KeelConfig) this crate owns, one module per concept,
//! and the layer crates' own settings types that it loads.
//!
//! `pool`, `retry`, `breaker` and `health` are the layer crates' types
//! (`PoolSettings`, `RetrySettings`, `BreakerSettings`, and `HealthConfig` with the `health`
//! feature): defaults,
//! reasons and validation live there; this crate only loads them (see `sections`).

mod compression;
mod concern;
mod timeouts;
mod tls;

pub use compression::Compression;
pub use concern::{ReadConcernSetting, WriteAck, WriteConcernSettings};
pub use keel_breaker::BreakerSettings;
#[cfg(feature = "health")]
pub use keel_health::HealthConfig;
pub use keel_pool_core::PoolSettings;
pub use keel_retry::{Jitter, RetrySettings};
pub use timeouts::Timeouts;
pub use tls::{TlsMode, TlsSettings};
