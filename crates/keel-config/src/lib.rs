//! Keel's typed, layered configuration and its mapping onto the MongoDB driver's options.
//!
//! One [`KeelConfig`] holds everything Keel and the driver need: connection string and
//! credentials, timeouts, TLS, read/write concern, and the settings each layer crate owns —
//! `pool` ([`PoolSettings`]), `retry` ([`RetrySettings`]), `breaker` ([`BreakerSettings`]) and,
//! with the `health` feature, `health` (`keel_health::HealthConfig`). Those types keep their
//! fields, defaults, reasons and validation in their own crates; this crate loads them through
//! serde, explains them and checks the settings that span sections. It is loaded in layers,
//! lowest precedence first:
//!
//! 1. Keel's base defaults (tuned for production, each with a documented reason),
//! 2. the [`Profile`] (`development`, `testing`, `production`),
//! 3. the runtime [`Preset`] (`server`, `serverless`),
//! 4. options in the connection string that Keel also manages (`maxPoolSize`, `appName`, `w`…),
//! 5. a TOML file,
//! 6. `KEEL_*` environment variables (one per setting, see [`fields`]),
//! 7. explicit overrides.
//!
//! [`KeelConfig::explain`] shows each effective value, where it came from and why;
//! [`KeelConfig::to_client_options`] builds the driver's `ClientOptions`. Bad input becomes a
//! [`ConfigError`] naming the setting, the value (redacted when secret) and a fix. Passwords and
//! connection-string credentials never appear in `Debug`, `Display`, errors or explanations.
//!
//! ```
//! use keel_config::{KeelConfig, LoadOptions, Profile, Source};
//!
//! let config = KeelConfig::load(
//!     LoadOptions::new()
//!         .profile(Profile::Testing)
//!         .env([("KEEL_URI", "mongodb://svc:s3cret@db.internal:27017/app")])
//!         .set("pool.max_size", "20"),
//! )?;
//! assert_eq!(config.pool.max_size, 20);
//! assert_eq!(config.explain().row("pool.max_size").unwrap().source(), Source::Override);
//! assert!(!config.explain().to_string().contains("s3cret"));
//! # Ok::<(), keel_config::ConfigErrors>(())
//! ```

mod client_options;
mod config;
mod defaults;
mod duration;
mod env;
mod error;
mod explain;
mod fields;
mod file;
pub mod lints;
mod load;
mod profile;
mod sections;
mod serde_impl;
mod settings;
mod source;
mod suggest;
mod uri;
mod uri_options;
mod validate;
mod value;

pub use config::KeelConfig;
pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors};
pub use explain::{ExplainRow, Explanation};
pub use fields::{Field, fields};
pub use load::LoadOptions;
pub use profile::{Preset, Profile, UnknownName};
#[cfg(feature = "health")]
pub use settings::HealthConfig;
pub use settings::{
    BreakerSettings, Compression, Jitter, PoolSettings, ReadConcernSetting, RetrySettings,
    Timeouts, TlsMode, TlsSettings, WriteAck, WriteConcernSettings,
};
pub use source::Source;
pub use uri::ConnectionUri;
