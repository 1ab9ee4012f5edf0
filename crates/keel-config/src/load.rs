//! [`LoadOptions`] and the layering: defaults < profile < preset < connection-string options
//! < file < env < overrides.

use std::fmt;
use std::path::PathBuf;

use crate::config::KeelConfig;
use crate::error::ConfigErrors;
use crate::fields::index_of_path;
use crate::file::Assignment;
use crate::source::Source;
use crate::value::FieldValue;
use crate::{Preset, Profile};

/// What [`KeelConfig::load`] reads. Every part is optional: `LoadOptions::new()` gives the
/// production defaults for the server preset.
///
/// `Debug` shows the environment variable names and override paths but never their values.
///
/// ```
/// use keel_config::{KeelConfig, LoadOptions, Profile};
/// let options = LoadOptions::new()
///     .profile(Profile::Testing)
///     .env([("KEEL_POOL_MAX_SIZE", "4"), ("HOME", "/root")]) // non-KEEL_ names are ignored
///     .set("timeouts.connect", "1s");
/// let config = KeelConfig::load(options)?;
/// assert_eq!(config.pool.max_size, 4);
/// # Ok::<(), keel_config::ConfigErrors>(())
/// ```
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// The profile; wins over `profile` in the file and `KEEL_PROFILE`.
    pub profile: Option<Profile>,
    /// The preset; wins over `preset` in the file and `KEEL_PRESET`.
    pub preset: Option<Preset>,
    /// A TOML file; it must exist when given.
    pub file: Option<PathBuf>,
    /// Environment variables (name, value); only `KEEL_*` names are read.
    pub env: Vec<(String, String)>,
    /// Explicit overrides (dotted path such as `pool.max_size`, value as text), applied last.
    pub overrides: Vec<(String, String)>,
}

impl LoadOptions {
    /// Nothing but defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses the profile.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Chooses the preset.
    pub fn preset(mut self, preset: Preset) -> Self {
        self.preset = Some(preset);
        self
    }

    /// Reads a TOML file.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Reads environment variables from any list (replacing any read before), so tests never
    /// touch the process environment. Names not starting with `KEEL_` are ignored.
    pub fn env<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// Reads the process's `KEEL_*` environment variables (replacing any list read before).
    pub fn process_env(mut self) -> Self {
        self.env = crate::env::process_vars();
        self
    }

    /// Adds an override, such as `.set("pool.max_size", "20")`.
    pub fn set(mut self, path: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((path.into(), value.into()));
        self
    }
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        let overrides: Vec<&str> = self.overrides.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("LoadOptions")
            .field("profile", &self.profile)
            .field("preset", &self.preset)
            .field("file", &self.file)
            .field("env", &env)
            .field("overrides", &overrides)
            .finish()
    }
}

pub(crate) fn load(options: LoadOptions) -> Result<KeelConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let file = options
        .file
        .as_deref()
        .map(|path| crate::file::read(path, &mut errors))
        .unwrap_or_default();
    build(options, file, errors)
}

/// Loads from an already parsed table (serde), which plays the part of the file.
pub(crate) fn from_table(table: &toml::Table) -> Result<KeelConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let file = crate::file::flatten_table(table, &mut errors);
    build(LoadOptions::new(), file, errors)
}

fn build(
    options: LoadOptions,
    file: Vec<Assignment>,
    mut errors: Vec<crate::ConfigError>,
) -> Result<KeelConfig, ConfigErrors> {
    let env = crate::env::read(&options.env, &mut errors);
    let mut overrides = Vec::new();
    for (path, text) in &options.overrides {
        match index_of_path(path) {
            Some(index) => overrides.push(Assignment {
                index,
                name: path.clone(),
                text: text.clone(),
            }),
            None => errors.push(crate::suggest::unknown_path(path)),
        }
    }
    let layers = [
        (Source::File, file),
        (Source::Env, env),
        (Source::Override, overrides),
    ];

    // The profile and preset pick the defaults that every other layer refines, so they are
    // settled first, by the same precedence.
    let profile = options
        .profile
        .or_else(|| chosen(&layers, "profile"))
        .unwrap_or(Profile::Production);
    let preset = options
        .preset
        .or_else(|| chosen(&layers, "preset"))
        .unwrap_or(Preset::Server);

    let mut config = KeelConfig::layered_defaults(profile, preset, &mut errors);
    // The connection string that will be in effect supplies the layer between the defaults
    // and the file, so it is settled first too.
    let uri = chosen::<crate::ConnectionUri>(&layers, "uri").unwrap_or_else(|| config.uri.clone());
    let uri_layer = crate::uri_options::read(uri.expose(), &mut errors);
    for assignment in &uri_layer {
        if let Err(error) = config.assign(
            assignment.index,
            &assignment.name,
            &assignment.text,
            Source::Uri,
            None,
        ) {
            errors.push(error);
        }
    }
    for (source, assignments) in &layers {
        for assignment in assignments {
            if let Err(error) = config.assign(
                assignment.index,
                &assignment.name,
                &assignment.text,
                *source,
                None,
            ) {
                errors.push(error);
            }
        }
    }
    // An explicit choice in code also wins over what the layers said.
    if let Some(profile) = options.profile {
        config.assign_typed("profile", &profile.to_string());
    }
    if let Some(preset) = options.preset {
        config.assign_typed("preset", &preset.to_string());
    }

    // Validation runs even after parse errors (failed fields keep valid defaults) so one run
    // reports every problem.
    if let Err(invalid) = config.validate() {
        errors.extend(invalid);
    }
    ConfigErrors::from_vec(errors)?;
    Ok(config)
}

/// The value of `path` in the highest layer that sets it, if it parses (a bad one is reported
/// when the layer is applied).
fn chosen<T: FieldValue>(layers: &[(Source, Vec<Assignment>)], path: &str) -> Option<T> {
    let index = index_of_path(path)?;
    layers
        .iter()
        .rev()
        .flat_map(|(_, assignments)| assignments.iter().rev())
        .find(|assignment| assignment.index == index)
        .and_then(|assignment| T::parse(&assignment.text).ok())
}

impl KeelConfig {
    /// Records a value chosen in code through [`LoadOptions`]; the text always parses.
    fn assign_typed(&mut self, path: &str, text: &str) {
        if let Some(index) = index_of_path(path) {
            let result = self.assign(index, path, text, Source::Override, None);
            debug_assert!(result.is_ok(), "{path}: {result:?}");
        }
    }
}
