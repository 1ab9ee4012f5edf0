//! [`KeelConfig`]: every setting Keel and the driver need, with where each value came from.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use keel_core::Secret;

use crate::defaults;
use crate::error::{ConfigError, ConfigErrors};
use crate::fields::{fields, index_of_path};
use crate::load::LoadOptions;
use crate::settings::{
    BreakerSettings, Compression, PoolSettings, ReadConcernSetting, RetrySettings, Timeouts,
    TlsMode, TlsSettings, WriteAck, WriteConcernSettings,
};
use crate::source::Source;
use crate::{ConnectionUri, Preset, Profile};
#[cfg(feature = "health")]
use keel_health::HealthConfig;

/// Keel's whole configuration: the connection string and credentials, pool, timeouts, TLS,
/// concerns, and the settings of the retry, breaker and health layers.
///
/// Build one with [`KeelConfig::load`] (defaults < profile < preset < TOML file < `KEEL_*`
/// environment < overrides), or with [`KeelConfig::for_uri`] / [`KeelConfig::development`]
/// in tests and examples. Fields are public for reading and for adjusting in code;
/// [`KeelConfig::validate`] checks them again and [`KeelConfig::explain`] reports a value
/// changed after loading as coming from `code`.
///
/// `Debug` never shows the password or the connection string's credentials.
///
/// ```
/// use keel_config::{KeelConfig, LoadOptions, Preset, Profile, Source};
///
/// let config = KeelConfig::load(
///     LoadOptions::new()
///         .profile(Profile::Development)
///         .preset(Preset::Serverless)
///         .env([("KEEL_URI", "mongodb://app:s3cret@localhost:27017/")])
///         .set("pool.max_size", "8"),
/// )?;
/// assert_eq!(config.pool.max_size, 8);
/// assert!(config.lazy_connect); // the serverless preset
///
/// let explanation = config.explain();
/// assert_eq!(explanation.row("uri").unwrap().source(), Source::Env);
/// assert!(!explanation.to_string().contains("s3cret"));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), keel_config::ConfigErrors>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct KeelConfig {
    /// The deployment profile whose defaults apply.
    pub profile: Profile,
    /// The runtime preset whose defaults apply.
    pub preset: Preset,
    /// The MongoDB connection string.
    pub uri: ConnectionUri,
    /// The name the client reports to the server; `None` keeps the connection string's.
    pub app_name: Option<String>,
    /// User name, when not given in the connection string.
    pub username: Option<String>,
    /// Password, when not given in the connection string (giving both is an error).
    pub password: Option<Secret<String>>,
    /// Whether the first connection is made on first use instead of at startup; applied by
    /// `keel-pool-core`.
    pub lazy_connect: bool,
    /// How often the driver checks each server (driver `heartbeatFrequencyMS`, at least 500ms).
    pub heartbeat: Duration,
    /// Wire compressors, in order of preference; empty means none.
    pub compressors: Vec<Compression>,
    /// Pool sizes and waiting bounds (`keel-pool-core`'s settings).
    pub pool: PoolSettings,
    /// Time limits.
    pub timeouts: Timeouts,
    /// TLS.
    pub tls: TlsSettings,
    /// Read concern.
    pub read_concern: ReadConcernSetting,
    /// Write concern.
    pub write_concern: WriteConcernSettings,
    /// Keel's retry layer (`keel-retry`'s settings).
    pub retry: RetrySettings,
    /// Keel's circuit breaker layer (`keel-breaker`'s settings).
    pub breaker: BreakerSettings,
    /// Keel's health monitor (`keel-health`'s settings); read it through
    /// [`KeelConfig::health_config`], which adds the pool size. With the `health` feature.
    #[cfg(feature = "health")]
    pub health: HealthConfig,
    origins: Origins,
}

/// Where each field's value came from, in [`fields`] order.
#[derive(Clone, Default)]
pub(crate) struct Origins(Vec<Origin>);

#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub(crate) source: Source,
    /// The value as shown when it was set, to notice later changes made in code.
    pub(crate) shown: String,
    pub(crate) reason: Option<&'static str>,
}

// Two configs with the same values are equal however they were loaded.
impl PartialEq for Origins {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl fmt::Debug for Origins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

impl KeelConfig {
    /// Loads the configuration from every layer and validates it.
    ///
    /// Precedence, lowest first: Keel's defaults, the profile, the preset, the TOML file, the
    /// `KEEL_*` environment, explicit overrides. All problems are reported together.
    pub fn load(options: LoadOptions) -> Result<Self, ConfigErrors> {
        crate::load::load(options)
    }

    /// The defaults for a profile and preset, without any file, environment or override.
    ///
    /// ```
    /// use keel_config::{KeelConfig, Preset, Profile};
    /// let config = KeelConfig::defaults(Profile::Production, Preset::Serverless);
    /// assert_eq!(config.pool.max_size, 5);
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn defaults(profile: Profile, preset: Preset) -> Self {
        let mut errors = Vec::new();
        let config = Self::layered_defaults(profile, preset, &mut errors);
        // The tables are tested to parse, so nothing can land here; keep it visible anyway.
        debug_assert!(errors.is_empty(), "{errors:?}");
        config
    }

    /// Base defaults, then the profile's, then the preset's.
    pub(crate) fn layered_defaults(
        profile: Profile,
        preset: Preset,
        errors: &mut Vec<ConfigError>,
    ) -> Self {
        let mut config = Self::blank();
        config.apply_defaults(defaults::BASE, Source::Default, errors);
        for (index, field) in fields().iter().enumerate() {
            if let Some(reason) = field.layer_reason() {
                config.record(Some(index), Source::Default, Some(reason));
            }
        }
        config.apply_defaults(defaults::for_profile(profile), Source::Profile, errors);
        config.apply_defaults(defaults::for_preset(preset), Source::Preset, errors);
        if config.profile != profile {
            config.profile = profile;
            config.record(index_of_path("profile"), Source::Override, None);
        }
        if config.preset != preset {
            config.preset = preset;
            config.record(index_of_path("preset"), Source::Override, None);
        }
        config
    }

    /// The health monitor's settings, with the pool size it measures saturation against taken
    /// from `pool.max_size`.
    ///
    /// ```
    /// let config = keel_config::KeelConfig::development("mongodb://localhost")?;
    /// assert_eq!(config.health_config().pool_max_size, config.pool.max_size);
    /// # Ok::<(), keel_config::ConfigErrors>(())
    /// ```
    #[cfg(feature = "health")]
    pub fn health_config(&self) -> HealthConfig {
        let mut health = self.health.clone();
        health.pool_max_size = self.pool.max_size;
        health
    }

    /// Production defaults and the server preset for `uri`, validated.
    pub fn for_uri(uri: impl Into<String>) -> Result<Self, ConfigErrors> {
        Self::load(LoadOptions::new().set("uri", uri))
    }

    /// Development defaults and the server preset for `uri`, validated; for examples and tests.
    ///
    /// ```
    /// let config = keel_config::KeelConfig::development("mongodb://localhost:27017")?;
    /// assert_eq!(config.pool.max_size, 10);
    /// # Ok::<(), keel_config::ConfigErrors>(())
    /// ```
    pub fn development(uri: impl Into<String>) -> Result<Self, ConfigErrors> {
        Self::load(
            LoadOptions::new()
                .profile(Profile::Development)
                .set("uri", uri),
        )
    }

    /// Sets one field from text, as a file or the environment would (`"pool.max_size"`,
    /// `"5s"`), and records it as an override. Does not re-validate; call
    /// [`KeelConfig::validate`] after a batch of changes.
    ///
    /// ```
    /// let mut config = keel_config::KeelConfig::development("mongodb://localhost")?;
    /// config.set("timeouts.connect", "3s")?;
    /// assert_eq!(config.timeouts.connect, std::time::Duration::from_secs(3));
    /// assert!(config.set("pool.size", "3").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), ConfigError> {
        let Some(index) = index_of_path(path) else {
            return Err(crate::suggest::unknown_path(path));
        };
        self.assign(index, path, value, Source::Override, None)
    }

    /// A config whose own fields are overwritten by [`defaults::BASE`] right away (their values
    /// here are placeholders, never seen: a test checks BASE covers them); the layer sections
    /// hold their crates' defaults, which are Keel's base defaults.
    pub(crate) fn blank() -> Self {
        Self {
            profile: Profile::Production,
            preset: Preset::Server,
            uri: ConnectionUri::new(String::new()),
            app_name: None,
            username: None,
            password: None,
            lazy_connect: false,
            heartbeat: Duration::ZERO,
            compressors: Vec::new(),
            pool: PoolSettings::default(),
            timeouts: Timeouts {
                connect: Duration::ZERO,
                server_selection: Duration::ZERO,
                attempt: Duration::ZERO,
                checkout_wait: Duration::ZERO,
                deadline: Duration::ZERO,
                outage_grace: Duration::ZERO,
                election_wait: Duration::ZERO,
            },
            tls: TlsSettings {
                mode: TlsMode::FromUri,
                ca_file: None::<PathBuf>,
                cert_key_file: None,
                allow_invalid_certificates: false,
                allow_invalid_hostnames: false,
            },
            read_concern: ReadConcernSetting::ServerDefault,
            write_concern: WriteConcernSettings {
                w: WriteAck::ServerDefault,
                journal: None,
            },
            retry: RetrySettings::default(),
            breaker: BreakerSettings::default(),
            #[cfg(feature = "health")]
            health: HealthConfig::default(),
            origins: Origins(Vec::new()),
        }
    }

    pub(crate) fn apply_defaults(
        &mut self,
        table: &[defaults::Default],
        source: Source,
        errors: &mut Vec<ConfigError>,
    ) {
        for default in table {
            match index_of_path(default.path) {
                Some(index) => {
                    if let Err(error) = self.assign(
                        index,
                        default.path,
                        default.value,
                        source,
                        Some(default.reason),
                    ) {
                        errors.push(error);
                    }
                }
                None => errors.push(crate::suggest::unknown_path(default.path)),
            }
        }
    }

    /// Parses `text` into field `index`; `name` is how the user wrote the field (path or env).
    pub(crate) fn assign(
        &mut self,
        index: usize,
        name: &str,
        text: &str,
        source: Source,
        reason: Option<&'static str>,
    ) -> Result<(), ConfigError> {
        let field = &fields()[index];
        match field.set(self, text) {
            Ok(()) => {
                self.record(Some(index), source, reason);
                Ok(())
            }
            Err(problem) => {
                Err(ConfigError::new(name, problem.problem, problem.fix)
                    .with_value(field.shown(text)))
            }
        }
    }

    fn record(&mut self, index: Option<usize>, source: Source, reason: Option<&'static str>) {
        let Some(index) = index else { return };
        let shown = fields()[index].get(self);
        let origins = &mut self.origins.0;
        if origins.len() < fields().len() {
            origins.resize(
                fields().len(),
                Origin {
                    source: Source::Default,
                    shown: String::new(),
                    reason: None,
                },
            );
        }
        origins[index] = Origin {
            source,
            shown,
            reason,
        };
    }

    pub(crate) fn origin(&self, index: usize) -> Option<&Origin> {
        self.origins.0.get(index)
    }
}
