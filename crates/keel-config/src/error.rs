//! Typed configuration errors: the field, the (redacted) value, the problem and the fix.

use std::fmt;

use keel_core::redact::REDACTED;

/// One problem with one setting.
///
/// The value is stored already redacted when the field is secret, so no formatting path can
/// leak it.
///
/// ```
/// use keel_config::{KeelConfig, LoadOptions};
/// let errors = KeelConfig::load(LoadOptions::new().set("pool.min_size", "500")).unwrap_err();
/// let first = errors.iter().next().unwrap();
/// assert_eq!(first.field(), "pool.min_size");
/// assert!(first.to_string().contains("fix:"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: String,
    value: Option<String>,
    origin: Option<String>,
    problem: String,
    fix: String,
}

impl ConfigError {
    /// A problem whose value is not shown (unknown names, secrets or missing values).
    pub(crate) fn new(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: None,
            origin: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// Attaches the value as shown to users; callers pass it through the field's redaction.
    pub(crate) fn with_value(mut self, shown: impl Into<String>) -> Self {
        self.value = Some(shown.into());
        self
    }

    /// Attaches a placeholder instead of a secret value.
    pub(crate) fn with_hidden_value(mut self) -> Self {
        self.value = Some(REDACTED.to_owned());
        self
    }

    /// Notes where the offending value came from, such as `KEEL_POOL_MIN_SIZE`.
    pub(crate) fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Where the offending value came from (`KEEL_POOL_MIN_SIZE`, `the TOML file`…), when known.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The setting, as a file path (`pool.max_size`), environment variable or file name.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The offending value as safe to show: redacted when secret, `None` when not shown.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// What is wrong.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// How to fix it.
    pub fn fix(&self) -> &str {
        &self.fix
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field)?;
        if let Some(value) = &self.value {
            write!(f, " = \"{value}\"")?;
        }
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        write!(f, ": {}; fix: {}.", self.problem, self.fix)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in field order, so one run shows them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub(crate) fn from_vec(errors: Vec<ConfigError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self(errors))
        }
    }

    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// How many problems there are (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `ConfigErrors` holds at least one problem.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any problem concerns `field`.
    pub fn mentions(&self, field: &str) -> bool {
        self.0.iter().any(|error| error.field == field)
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [only] => write!(f, "invalid configuration: {only}"),
            all => {
                write!(f, "invalid configuration ({} problems):", all.len())?;
                for error in all {
                    write!(f, "\n  - {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigErrors> for keel_core::Error {
    fn from(errors: ConfigErrors) -> Self {
        keel_core::Error::config(errors.to_string())
    }
}

impl From<ConfigError> for keel_core::Error {
    fn from(error: ConfigError) -> Self {
        keel_core::Error::config(ConfigErrors::from(error).to_string())
    }
}
