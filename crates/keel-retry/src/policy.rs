//! The policy trait: what to retry, how long the caller will wait, and how to annotate the
//! error the caller finally gets.

use std::time::Duration;

use tokio::time::Instant;

use crate::StopReason;

/// A policy's verdict on one failed attempt.
///
/// ```
/// use keel_retry::Decision;
/// use std::time::Duration;
///
/// // The server asked for 2 s of quiet: the backoff delay is lengthened to at least that.
/// let shed = Decision::Retry { at_least: Some(Duration::from_secs(2)) };
/// assert_ne!(shed, Decision::RETRY);
/// assert_ne!(Decision::RETRY, Decision::Stop);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Running the request again is safe and may help.
    Retry {
        /// Wait at least this long (a server's or a layer's `retry_after` hint). It only ever
        /// lengthens the backoff delay, never shortens it.
        at_least: Option<Duration>,
    },
    /// Do not run the request again; hand the error to the caller.
    Stop,
}

impl Decision {
    /// Retry after the backoff delay, with no hint.
    pub const RETRY: Decision = Decision::Retry { at_least: None };
}

/// Decides which failures of which requests are retried, generic over request and error.
///
/// Only [`decide`](Policy::decide) is required; the other hooks have neutral defaults.
///
/// ```
/// use keel_retry::{Decision, Policy, StopReason};
///
/// #[derive(Debug)]
/// struct HttpError { status: u16, note: String }
///
/// struct RetryServerErrors;
/// impl Policy<String, HttpError> for RetryServerErrors {
///     fn decide(&self, _req: &String, err: &HttpError) -> Decision {
///         if err.status >= 500 { Decision::RETRY } else { Decision::Stop }
///     }
///     fn on_give_up(&self, mut err: HttpError, attempts: u32, why: StopReason) -> HttpError {
///         err.note = format!("after {attempts} attempts: {why}");
///         err
///     }
/// }
/// let err = HttpError { status: 503, note: String::new() };
/// assert_eq!(RetryServerErrors.decide(&"GET /".to_owned(), &err), Decision::RETRY);
/// ```
pub trait Policy<Req, E>: Send + Sync {
    /// Whether to retry `request` after it failed with `error`.
    fn decide(&self, request: &Req, error: &E) -> Decision;

    /// The instant after which the caller no longer wants an answer, when the request says.
    /// The layer uses the earlier of this and its configured total timeout.
    fn deadline(&self, _request: &Req) -> Option<Instant> {
        None
    }

    /// The error to return, without trying at all, for a request whose deadline has already
    /// passed when it arrives. `None` (the default) runs the first attempt anyway.
    fn reject_expired(&self, _request: &Req) -> Option<E> {
        None
    }

    /// The error to return when the deadline passes while an attempt is still running (or
    /// while the layer waits for the service to accept the next attempt).
    ///
    /// Asked at most once per request, when the deadline passes while an attempt waits (so
    /// the error is never built for a request that finishes in time). `Some(error)` makes the
    /// layer end that attempt then (dropping its future) and return `error`, annotated
    /// through [`on_give_up`](Policy::on_give_up) with [`StopReason::DeadlineExceeded`]: the
    /// total deadline then bounds the time spent, not only the attempts started. `None` (the
    /// default) lets a running attempt finish, since the layer cannot make up an error of
    /// type `E`; bound each attempt with a timeout layer below instead.
    ///
    /// ```
    /// use keel_retry::{Decision, Policy};
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum DbError { Transient, TimedOut }
    ///
    /// struct CutAtDeadline;
    /// impl Policy<u32, DbError> for CutAtDeadline {
    ///     fn decide(&self, _: &u32, err: &DbError) -> Decision {
    ///         if *err == DbError::Transient { Decision::RETRY } else { Decision::Stop }
    ///     }
    ///     fn deadline_error(&self, _: &u32) -> Option<DbError> {
    ///         Some(DbError::TimedOut)
    ///     }
    /// }
    /// assert_eq!(CutAtDeadline.deadline_error(&7), Some(DbError::TimedOut));
    /// ```
    fn deadline_error(&self, _request: &Req) -> Option<E> {
        None
    }

    /// Annotates the error the caller gets: how many attempts were made and why the layer
    /// stopped. Called for every error the layer returns. The default returns it unchanged.
    fn on_give_up(&self, error: E, _attempts: u32, _reason: StopReason) -> E {
        error
    }

    /// The `op` label of metrics and the `op` field of events. Must come from a small fixed
    /// set (never user data), or the metrics backend will drown in series.
    fn operation_name<'r>(&self, _request: &'r Req) -> &'r str {
        "request"
    }

    /// The `class` label of metrics and events.
    fn error_class(&self, _error: &E) -> &'static str {
        "error"
    }
}

/// A policy from a predicate on the error: retry when it returns `true`.
///
/// ```
/// use keel_retry::{Decision, Policy, RetryIf};
/// let policy = RetryIf::new(|err: &std::io::Error| err.kind() == std::io::ErrorKind::TimedOut);
/// let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
/// assert_eq!(policy.decide(&(), &timed_out), Decision::RETRY);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RetryIf<F> {
    predicate: F,
}

impl<F> RetryIf<F> {
    /// A policy that retries errors for which `predicate` returns `true`.
    pub fn new(predicate: F) -> Self {
        Self { predicate }
    }
}

impl<Req, E, F> Policy<Req, E> for RetryIf<F>
where
    F: Fn(&E) -> bool + Send + Sync,
{
    fn decide(&self, _request: &Req, error: &E) -> Decision {
        if (self.predicate)(error) {
            Decision::RETRY
        } else {
            Decision::Stop
        }
    }
}
