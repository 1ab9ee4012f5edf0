//! The breaker's error types: invalid configuration, an open circuit, and the generic service error.

use std::{fmt, time::Duration};

/// A [`BreakerConfig`](crate::BreakerConfig) (or breaker name) that cannot work.
///
/// Returned by [`Breaker::new`](crate::Breaker::new) instead of panicking, so a bad value read
/// from a configuration file is reported to the operator.
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, ConfigError};
///
/// let config = BreakerConfig { half_open_probes: 0, ..BreakerConfig::default() };
/// assert_eq!(Breaker::new("t", config).unwrap_err(), ConfigError::Zero("half_open_probes"));
/// assert_eq!(Breaker::new("", BreakerConfig::default()).unwrap_err(), ConfigError::EmptyName);
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The breaker name is empty; metrics and logs need it to tell breakers apart.
    #[error("the breaker name must not be empty")]
    EmptyName,
    /// A rate threshold is not a percentage in `(0, 100]`.
    #[error("{field} must be a percentage greater than 0 and at most 100, got {value}")]
    RateOutOfRange {
        /// Which setting.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A count-based window of zero calls, or a time-based window of zero length or buckets.
    #[error("the sliding window must not be empty ({0})")]
    EmptyWindow(&'static str),
    /// A window larger than the breaker can count exactly.
    #[error("the sliding window is too large: {0}")]
    WindowTooLarge(&'static str),
    /// A setting that must be at least 1 is 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// `minimum_calls` can never be reached by a count-based window that small.
    #[error(
        "minimum_calls ({minimum_calls}) exceeds the count-based window ({window} calls), so the rates could never be evaluated"
    )]
    MinimumCallsExceedWindow {
        /// The configured minimum.
        minimum_calls: u32,
        /// The window size.
        window: u32,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The open wait multiplier is below 1, NaN or infinite.
    #[error("open_wait_multiplier must be a finite number of at least 1, got {0}")]
    InvalidMultiplier(f64),
    /// The maximum open wait is shorter than the initial one.
    #[error("max_open_wait ({max:?}) is shorter than open_wait ({initial:?})")]
    MaxOpenWaitBelowOpenWait {
        /// The initial wait.
        initial: Duration,
        /// The maximum wait.
        max: Duration,
    },
}

/// The circuit refused a call without trying it.
///
/// ```
/// use keel_breaker::CircuitOpen;
/// use std::time::Duration;
///
/// let open = CircuitOpen::new(Duration::from_secs(3));
/// assert_eq!(open.retry_after(), Duration::from_secs(3));
/// assert_eq!(open.to_string(), "circuit open: retry after 3s");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("circuit open: retry after {retry_after:?}")]
pub struct CircuitOpen {
    retry_after: Duration,
}

impl CircuitOpen {
    /// A rejection advising the caller to come back after `retry_after`.
    pub fn new(retry_after: Duration) -> Self {
        Self { retry_after }
    }

    /// How long the caller should wait before trying again (a hint, not a promise).
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

/// The error of a [`CircuitBreaker`](crate::CircuitBreaker) service under a generic policy.
///
/// ```
/// use keel_breaker::{BreakerError, CircuitOpen};
/// use std::time::Duration;
///
/// let err: BreakerError<std::io::Error> = CircuitOpen::new(Duration::from_secs(1)).into();
/// assert!(err.is_circuit_open());
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
/// ```
#[derive(Debug)]
pub enum BreakerError<E> {
    /// The circuit is open: the call was not tried.
    CircuitOpen {
        /// When the caller may try again.
        retry_after: Duration,
    },
    /// The wrapped service failed.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// Whether the breaker refused the call.
    pub fn is_circuit_open(&self) -> bool {
        matches!(self, BreakerError::CircuitOpen { .. })
    }

    /// The retry hint when the breaker refused the call.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BreakerError::CircuitOpen { retry_after } => Some(*retry_after),
            BreakerError::Inner(_) => None,
        }
    }

    /// The wrapped service's error, if that is what happened.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            BreakerError::CircuitOpen { .. } => None,
        }
    }
}

impl<E> From<CircuitOpen> for BreakerError<E> {
    fn from(open: CircuitOpen) -> Self {
        BreakerError::CircuitOpen {
            retry_after: open.retry_after,
        }
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::CircuitOpen { retry_after } => {
                write!(f, "circuit open: retry after {retry_after:?}")
            }
            BreakerError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BreakerError::Inner(e) => Some(e),
            BreakerError::CircuitOpen { .. } => None,
        }
    }
}
