//! The typed error returned when a retry configuration is invalid.

use std::time::Duration;

/// A [`RetryConfig`](crate::RetryConfig) that cannot work, found before any request is sent.
///
/// Every invalid input gets its own variant so callers (and config loaders) can say exactly
/// which setting is wrong; building a layer never panics on bad input.
///
/// ```
/// use keel_retry::{ConfigError, RetryConfig, RetryIf, RetryLayer};
///
/// let config = RetryConfig { max_attempts: 0, ..RetryConfig::default() };
/// let Err(err) = RetryLayer::new(RetryIf::new(|_: &()| true), config) else {
///     panic!("0 attempts must be refused");
/// };
/// assert_eq!(err, ConfigError::ZeroMaxAttempts);
/// assert!(err.to_string().contains("max_attempts"));
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_attempts` was 0: the first attempt counts, so at least 1 is needed.
    #[error("max_attempts must be at least 1 (the first attempt counts), got 0")]
    ZeroMaxAttempts,
    /// The backoff cap is shorter than the base delay.
    #[error("backoff cap ({cap:?}) must not be shorter than the base delay ({base:?})")]
    CapBelowBase {
        /// The configured base delay.
        base: Duration,
        /// The configured cap.
        cap: Duration,
    },
    /// The backoff multiplier is not a finite number ≥ 1.
    #[error("backoff multiplier must be a finite number >= 1, got {0}")]
    InvalidMultiplier(f64),
    /// The retry budget ratio is not a finite number between 0 and 1000.
    #[error("retry budget ratio must be a finite number between 0 and 1000, got {0}")]
    InvalidRatio(f64),
    /// The retry budget window is outside 1 s ..= 60 s.
    #[error("retry budget window must be between 1s and 60s, got {0:?}")]
    InvalidBudgetWindow(Duration),
    /// A duration that must be positive was zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
}
