//! The retry layer's configuration, as plain data with documented defaults.

use std::time::Duration;

use crate::{BackoffConfig, BudgetConfig, ConfigError};

mod jitter_serde;
mod settings;

pub use jitter_serde::UnknownJitter;
pub use settings::{RetrySettings, SettingError};

/// Everything the retry layer can be told; validated by [`RetryLayer::new`](crate::RetryLayer::new).
///
/// Defaults, and why:
/// * `max_attempts` = 3 (the first attempt and two retries). The MongoDB driver already retries
///   a retryable read or write once *inside* each attempt, so 3 layer attempts mean up to 6
///   sends; more would multiply the load during an outage. The deadline, not the count, is the
///   real bound.
/// * `total_timeout` = 10 s from the first attempt: a caller rarely wants an answer later, and
///   it keeps a failover from holding requests indefinitely. A request's own deadline (through
///   [`Policy::deadline`](crate::Policy::deadline)) wins when earlier.
/// * `attempt_timeout` = none: set it to the attempt timeout of the layer below, and a retry is
///   started only when that whole attempt fits before the deadline.
/// * `backoff` and `budget`: see [`BackoffConfig`] and [`BudgetConfig`].
///
/// ```
/// use keel_retry::{RetryConfig, RetryIf, RetryLayer};
/// use std::time::Duration;
///
/// let config = RetryConfig {
///     max_attempts: 5,
///     total_timeout: Some(Duration::from_secs(3)),
///     attempt_timeout: Some(Duration::from_millis(500)), // the timeout layer below
///     ..RetryConfig::default()
/// };
/// let layer = RetryLayer::new(RetryIf::new(|_: &std::io::Error| true), config)?;
/// assert_eq!(layer.config().max_attempts, 5);
/// # Ok::<(), keel_retry::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryConfig {
    /// Attempts in total, the first included; at least 1 (1 disables retries).
    pub max_attempts: u32,
    /// Delays between attempts.
    pub backoff: BackoffConfig,
    /// The retry budget shared by every service built from one layer; `None` disables it.
    pub budget: Option<BudgetConfig>,
    /// All attempts and delays together end within this time of the first attempt: no retry
    /// starts at or after it, and an attempt still running then is cut when the policy offers
    /// a [`Policy::deadline_error`](crate::Policy::deadline_error).
    pub total_timeout: Option<Duration>,
    /// How long one attempt may take: a retry that cannot finish before the deadline is not
    /// started.
    pub attempt_timeout: Option<Duration>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: BackoffConfig::default(),
            budget: Some(BudgetConfig::default()),
            total_timeout: Some(Duration::from_secs(10)),
            attempt_timeout: None,
        }
    }
}

impl RetryConfig {
    /// Checks the settings that are not checked by [`Backoff::new`](crate::Backoff::new) and
    /// [`RetryBudget::new`](crate::RetryBudget::new).
    pub(crate) fn check_limits(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::ZeroMaxAttempts);
        }
        if self.total_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroDuration("total_timeout"));
        }
        if self.attempt_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroDuration("attempt_timeout"));
        }
        Ok(())
    }
}
