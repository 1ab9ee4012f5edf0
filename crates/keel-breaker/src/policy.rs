//! Policies: which outcomes count against the dependency, and what error the service returns.

use crate::{BreakerError, CallOutcome, CircuitOpen};

/// Judges a call's result and shapes the errors of a [`CircuitBreaker`](crate::CircuitBreaker).
///
/// `Res` and `E` are the wrapped service's response and error types.
///
/// ```
/// use keel_breaker::{CallOutcome, CircuitOpen, Policy};
/// use std::io;
///
/// /// Timeouts count; "not found" is the caller's business.
/// #[derive(Clone)]
/// struct IoPolicy;
///
/// impl<Res> Policy<Res, io::Error> for IoPolicy {
///     type Error = io::Error;
///
///     fn classify(&self, result: &Result<Res, io::Error>) -> CallOutcome {
///         match result {
///             Ok(_) => CallOutcome::Success,
///             Err(e) if e.kind() == io::ErrorKind::NotFound => CallOutcome::Ignored,
///             Err(_) => CallOutcome::Failure,
///         }
///     }
///
///     fn rejected(&self, open: CircuitOpen) -> io::Error {
///         io::Error::new(io::ErrorKind::ConnectionRefused, open)
///     }
///
///     fn error(&self, error: io::Error) -> io::Error {
///         error
///     }
/// }
/// # let _ = IoPolicy;
/// ```
pub trait Policy<Res, E> {
    /// The error the breaker service returns.
    type Error;

    /// What the result says about the dependency.
    fn classify(&self, result: &Result<Res, E>) -> CallOutcome;

    /// The error for a call refused because the circuit is open.
    fn rejected(&self, open: CircuitOpen) -> Self::Error;

    /// The error for a call the wrapped service failed.
    fn error(&self, error: E) -> Self::Error;
}

/// The generic default: every error counts as a failure; errors are [`BreakerError`].
///
/// ```
/// use keel_breaker::{AnyError, CallOutcome, Policy};
///
/// let failed: Result<(), &str> = Err("timeout");
/// assert_eq!(AnyError.classify(&failed), CallOutcome::Failure);
/// assert!(matches!(Policy::<(), &str>::error(&AnyError, "timeout"), keel_breaker::BreakerError::Inner("timeout")));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyError;

impl<Res, E> Policy<Res, E> for AnyError {
    type Error = BreakerError<E>;

    fn classify(&self, result: &Result<Res, E>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Success,
            Err(_) => CallOutcome::Failure,
        }
    }

    fn rejected(&self, open: CircuitOpen) -> Self::Error {
        open.into()
    }

    fn error(&self, error: E) -> Self::Error {
        BreakerError::Inner(error)
    }
}

/// Counts only the errors `predicate` accepts; other errors are ignored. Errors are
/// [`BreakerError`]. Build it with [`count_errors_where`].
#[derive(Clone, Copy, Debug)]
pub struct ErrorFilter<F> {
    predicate: F,
}

/// A policy counting the errors for which `predicate` returns `true` as failures, and
/// ignoring the others.
///
/// ```
/// use keel_breaker::{CallOutcome, Policy, count_errors_where};
///
/// let policy = count_errors_where(|e: &String| e.starts_with("network"));
/// assert_eq!(Policy::<(), String>::classify(&policy, &Err("network down".into())), CallOutcome::Failure);
/// assert_eq!(Policy::<(), String>::classify(&policy, &Err("bad input".into())), CallOutcome::Ignored);
/// ```
pub fn count_errors_where<F>(predicate: F) -> ErrorFilter<F> {
    ErrorFilter { predicate }
}

impl<Res, E, F> Policy<Res, E> for ErrorFilter<F>
where
    F: Fn(&E) -> bool,
{
    type Error = BreakerError<E>;

    fn classify(&self, result: &Result<Res, E>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Success,
            Err(e) if (self.predicate)(e) => CallOutcome::Failure,
            Err(_) => CallOutcome::Ignored,
        }
    }

    fn rejected(&self, open: CircuitOpen) -> Self::Error {
        open.into()
    }

    fn error(&self, error: E) -> Self::Error {
        BreakerError::Inner(error)
    }
}
