//! Retries for `tower` services: capped exponential backoff with AWS-style jitter, a retry
//! budget against thundering herds, and a total deadline, under a pluggable [`Policy`].
//!
//! Generic over any request (`Clone`) and error. With the default `mongodb` feature,
//! `MongoPolicy` retries `keel_core::Operation`s exactly when MongoDB's retry-safety rules
//! allow (reads and idempotent operations on transient failures; other writes only when the
//! error proves nothing was applied; never auth, config, invalid input or past the deadline).
//!
//! For each failed attempt the layer asks, in order:
//! 1. the policy: is this error worth retrying for this request? (else *not retryable*)
//! 2. have `max_attempts` been made? (else *max attempts reached*)
//! 3. the delay: backoff with jitter, lengthened to any `retry_after` hint; would the next
//!    attempt start (and, with `attempt_timeout`, finish) before the deadline? (else *deadline
//!    exceeded*)
//! 4. does the retry budget allow one more retry? (else *retry budget exhausted*)
//!
//! The deadline bounds the time spent, not only the attempts started:
//! * just before a retry starts, it is checked again against the clock (timers wake late,
//!   readiness takes time), so no attempt starts at or past it, or too late to finish by it;
//! * with a policy that offers a [`Policy::deadline_error`] (as `MongoPolicy` does), an
//!   attempt — or a wait for the service to be ready — still running at the deadline is
//!   dropped and that error returned (*deadline exceeded*). Without one, bound each attempt
//!   with a timeout layer below.
//!
//! Every retry emits a `tracing` event (target `keel_retry`) and increments
//! `keel_retry_attempts_total{op,class}`; every error returned increments
//! `keel_retry_give_ups_total{op,reason}` and is annotated through [`Policy::on_give_up`] with
//! the number of attempts and the [`StopReason`] (a service that fails to become ready between
//! attempts counts as *not retryable*). The same counts are kept in-process by the layer's
//! [`RetryStats`] ([`RetryLayer::stats`]), which need no metrics recorder.
//!
//! ## How it composes with the driver
//! The MongoDB driver already retries a retryable read or write **once**, inside a single
//! attempt of this layer. With the default 3 attempts an operation may therefore reach the
//! server up to 6 times; the deadline and the budget, not the count, bound the cost. The layer
//! adds what the driver lacks: waiting *across* a failover with backoff, and retries of
//! operations the driver will not retry (idempotent writes declared by the caller).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::{sync::{Arc, atomic::{AtomicU32, Ordering}}, time::Duration};
//! use keel_retry::{RetryConfig, RetryIf, RetryLayer, StopReason};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! // A service that fails twice with a transient error, then answers.
//! let calls = Arc::new(AtomicU32::new(0));
//! let counter = Arc::clone(&calls);
//! let flaky = service_fn(move |name: &'static str| {
//!     let n = counter.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         if n < 2 { Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)) }
//!         else { Ok(format!("hello {name}")) }
//!     }
//! });
//!
//! let config = RetryConfig { total_timeout: Some(Duration::from_secs(2)), ..RetryConfig::default() };
//! let policy = RetryIf::new(|e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionReset);
//! let service = ServiceBuilder::new().layer(RetryLayer::new(policy, config)?).service(flaky);
//!
//! assert_eq!(service.oneshot("keel").await?, "hello keel");
//! assert_eq!(calls.load(Ordering::SeqCst), 3);
//! # Ok(())
//! # }
//! ```

mod backoff;
mod budget;
mod config;
mod error;
pub mod future;
mod jitter;
mod layer;
#[cfg(feature = "mongodb")]
mod mongodb;
mod observe;
mod policy;
mod service;
mod stats;
mod stop;

pub use backoff::{Backoff, BackoffConfig};
pub use budget::{BudgetConfig, RetryBudget};
pub use config::{RetryConfig, RetrySettings, SettingError, UnknownJitter};
pub use error::ConfigError;
pub use jitter::{FixedJitter, Jitter, JitterSource, SeededJitter, ThreadRngJitter};
pub use layer::RetryLayer;
#[cfg(feature = "mongodb")]
pub use mongodb::MongoPolicy;
pub use observe::{ATTEMPTS_TOTAL, GIVE_UPS_TOTAL};
pub use policy::{Decision, Policy, RetryIf};
pub use service::Retry;
pub use stats::{RetrySnapshot, RetryStats};
pub use stop::StopReason;
