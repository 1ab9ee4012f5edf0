//! The plain data sections of a [`KeelConfig`](crate::KeelConfig), one module per concept.
//!
//! These are data only: `keel-config` depends on no layer crate. The `mongokeel` facade maps
//! [`RetrySettings`] and [`BreakerSettings`] onto `keel-retry` and `keel-breaker`, and
//! [`PoolSettings`]/[`Timeouts`] onto the driver and `keel-pool-core`.

mod breaker;
mod compression;
mod concern;
mod pool;
mod retry;
mod timeouts;
mod tls;

pub use breaker::BreakerSettings;
pub use compression::Compression;
pub use concern::{ReadConcernSetting, WriteAck, WriteConcernSettings};
pub use pool::PoolSettings;
pub use retry::{Jitter, RetrySettings};
pub use timeouts::Timeouts;
pub use tls::{TlsMode, TlsSettings};
