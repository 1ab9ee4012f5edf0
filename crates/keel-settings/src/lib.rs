//! The shape every Keel layer crate's settings share: [`SettingError`], one problem with one
//! field, naming the value, what is wrong and how to fix it.
//!
//! keel-retry, keel-breaker, keel-pool-core and keel-health each own a settings type (defaults,
//! a reason per field, `problems()`); keel-config loads and explains them all through this one
//! error type. It is its own crate because the generic layers (keel-retry, keel-breaker) build
//! without keel-core and the driver.
//!
//! ```
//! use keel_settings::SettingError;
//! let error = SettingError::zero_duration("initial_backoff", "zero retries in a tight loop", "100ms");
//! assert_eq!(
//!     error.to_string(),
//!     "initial_backoff = \"0s\": zero retries in a tight loop; fix: set a positive duration such as \"100ms\""
//! );
//! ```

use std::time::Duration;

/// One problem with one setting, shown as `field = "value": problem; fix: fix`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} = \"{value}\": {problem}; fix: {fix}")]
#[non_exhaustive]
pub struct SettingError {
    /// The field, as named in a file section (`max_attempts`).
    pub field: &'static str,
    /// The offending value as written in a file.
    pub value: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl SettingError {
    /// A problem with `field`, whose value is written `value` in a file.
    pub fn new(
        field: &'static str,
        value: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            field,
            value: value.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// A duration that must not be zero, with an example of a good value (`"100ms"`).
    pub fn zero_duration(field: &'static str, problem: &str, example: &str) -> Self {
        Self::new(
            field,
            "0s",
            problem,
            format!("set a positive duration such as \"{example}\""),
        )
    }
}

/// A duration as a settings file writes it (`1m 30s`, `100ms`), for [`SettingError::value`].
///
/// ```
/// assert_eq!(keel_settings::shown(std::time::Duration::from_millis(1500)), "1s 500ms");
/// ```
pub fn shown(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
