//! A circuit breaker as tower middleware: fail fast while a dependency is down, probe it, and
//! close again when it has recovered.
//!
//! A [`Breaker`] is a shared, cheaply cloned handle holding the state machine
//! (closed → open → half-open → closed, plus operator-forced open and disabled). Its
//! [`layer`](Breaker::layer) wraps any `tower` service; a [`Policy`] decides which results count
//! as failures and what error a refused call gets; an optional [`Fallback`] serves degraded
//! responses while the circuit is open.
//!
//! The circuit opens when, over a count- or time-based [`SlidingWindow`] holding at least
//! `minimum_calls`, the failure rate or the slow-call rate reaches its threshold, or after a run
//! of consecutive failures. After the open wait (growing on repeated trips) it admits a few
//! probes: all succeed and it closes, one fails and it opens again.
//!
//! ```
//! use keel_breaker::{Breaker, BreakerConfig, BreakerState, BreakerError};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = BreakerConfig { consecutive_failures: Some(3), ..BreakerConfig::default() };
//! let breaker = Breaker::new("cluster0", config)?;
//! let mut service = ServiceBuilder::new()
//!     .layer(breaker.layer())
//!     .service(service_fn(|fail: bool| async move {
//!         if fail { Err(std::io::Error::other("connection reset")) } else { Ok("document") }
//!     }));
//!
//! for _ in 0..3 {
//!     let _ = service.ready().await?.call(true).await;
//! }
//! assert_eq!(breaker.state(), BreakerState::Open);
//!
//! // While open, calls fail at once without reaching the service.
//! match service.ready().await?.call(false).await {
//!     Err(BreakerError::CircuitOpen { retry_after }) => assert_eq!(retry_after, Duration::from_secs(5)),
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//!
//! // After the open wait, probes are let through; three successes close the circuit.
//! tokio::time::advance(Duration::from_secs(5)).await;
//! for _ in 0..3 {
//!     assert_eq!(service.ready().await?.call(false).await?, "document");
//! }
//! assert_eq!(breaker.state(), BreakerState::Closed);
//! # Ok(())
//! # }
//! ```
//!
//! With the default `mongodb` feature, `Breaker::mongodb_layer` uses `MongoPolicy`: only
//! infrastructure failures count, and a refused call fails with `keel_core::Error::circuit_open`.
//!
//! # Metrics
//!
//! | name | kind | labels | meaning |
//! |------|------|--------|---------|
//! | `keel_breaker_state` | gauge | `name` | 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled |
//! | `keel_breaker_calls_total` | counter | `name`, `outcome` | `success`, `failure`, `rejected`, `slow` (a slow success), `ignored` |

mod breaker;
mod config;
mod error;
mod fallback;
pub mod future;
mod layer;
mod metrics;
#[cfg(feature = "mongodb")]
mod mongodb;
mod permit;
mod policy;
mod service;
mod state;
mod stats;
mod window;

pub use breaker::Breaker;
pub use config::{
    BreakerConfig, BreakerSettings, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS, SettingError,
    SlidingWindow, SlowCalls,
};
pub use error::{BreakerError, CircuitOpen, ConfigError};
pub use fallback::{
    Fallback, FallbackFn, FallbackService, NoFallback, fallback_fn, fallback_service,
};
pub use layer::CircuitBreakerLayer;
pub use metrics::{CALLS_COUNTER, STATE_GAUGE};
#[cfg(feature = "mongodb")]
pub use mongodb::MongoPolicy;
pub use permit::{CallOutcome, Permit};
pub use policy::{AnyError, ErrorFilter, Policy, count_errors_where};
pub use service::CircuitBreaker;
pub use state::BreakerState;
pub use stats::BreakerStats;
pub use window::WindowSnapshot;
