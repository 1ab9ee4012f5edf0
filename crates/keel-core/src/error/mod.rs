//! Keel's error: what happened ([`ErrorKind`]), what class of trouble it is ([`ErrorClass`]),
//! whether retrying is safe, and what may be shown to whom.

mod class;
mod classify;
mod code_tables;
mod retry_safety;

use std::{borrow::Cow, fmt, time::Duration};

pub use class::{ErrorClass, Severity};
pub use classify::{
    Classification, DriverFailure, ErrorFacts, classify, classify_code,
    is_resumable_change_stream_error,
};
pub use code_tables::{codes, labels};
pub use retry_safety::is_retry_safe;

/// Tables of server error codes, each citing the specification it follows.
pub mod tables {
    pub use super::code_tables::{
        AUTH_CODES, CHANGE_STREAM_CODES, CURSOR_CODES, DUPLICATE_KEY_CODES, INVALID_INPUT_CODES,
        NETWORK_CODES, NODE_IS_RECOVERING_CODES, NOT_WRITABLE_PRIMARY_CODES, OVERLOADED_CODES,
        RESUMABLE_CHANGE_STREAM_CODES_PRE_44, RETRYABLE_READ_CODES, TIMEOUT_CODES,
        WRITE_CONCERN_CODES,
    };
}

use crate::{OperationKind, redact::redact_text};

/// What [`Error::user_message`] says for a duplicate key: the request was well formed, but
/// what it would create is already there.
pub const DUPLICATE_KEY_MESSAGE: &str =
    "This already exists: another record has the same unique value.";

/// Where a failure came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The MongoDB driver reported the failure; see [`Error::driver_error`].
    Driver,
    /// A circuit breaker refused the call without trying it.
    CircuitOpen,
    /// Keel shed the call to protect the database or itself (checkout wait limit, full queue).
    Overloaded,
    /// The caller's deadline passed.
    DeadlineExceeded,
    /// One attempt took longer than its time limit.
    AttemptTimeout,
    /// The client is shutting down or has shut down.
    ShuttingDown,
    /// No server was reachable in the time the caller could wait (Keel's reconnect queue).
    Unreachable,
    /// Keel's configuration is invalid.
    Config,
}

/// A classified, redacted failure of a Keel operation.
///
/// * [`class`](Error::class) and [`is_retryable`](Error::is_retryable) drive the layers;
/// * [`user_message`](Error::user_message) is safe to show an end user;
/// * `Display` and `Debug` give full detail for logs, with credentials always redacted.
///
/// ```
/// use keel_core::{Error, ErrorClass, OperationKind};
/// use std::time::Duration;
///
/// let err = Error::circuit_open(Duration::from_secs(5));
/// assert_eq!(err.class(), ErrorClass::Unavailable);
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
/// assert!(!err.is_retryable(OperationKind::Read));
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    classification: Classification,
    code: Option<i32>,
    labels: Vec<String>,
    detail: String,
    attempts: Option<Attempts>,
    driver: Option<mongodb::error::Error>,
}

#[derive(Clone, Copy, Debug)]
struct Attempts {
    count: u32,
    stopped_because: &'static str,
}

impl Error {
    fn build(kind: ErrorKind, classification: Classification, detail: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                classification,
                code: None,
                labels: Vec::new(),
                detail: redact_text(&detail.into()),
                attempts: None,
                driver: None,
            }),
        }
    }

    fn keel(
        kind: ErrorKind,
        class: ErrorClass,
        proves_not_applied: bool,
        retry_after: Option<Duration>,
        detail: impl Into<String>,
    ) -> Self {
        Self::build(
            kind,
            Classification {
                class,
                proves_not_applied,
                retry_after,
            },
            detail,
        )
    }

    /// Classifies a driver error.
    pub fn from_driver(error: mongodb::error::Error) -> Self {
        let facts = ErrorFacts::from_driver(&error);
        let mut built = Self::build(ErrorKind::Driver, classify(&facts), error.to_string());
        built.inner.code = facts.code;
        built.inner.labels = facts.labels.into_iter().collect();
        built.inner.driver = Some(error);
        built
    }

    /// An error classified from facts alone (for policies and tests that have no driver error).
    pub fn from_facts(facts: &ErrorFacts, detail: impl Into<String>) -> Self {
        let mut built = Self::build(ErrorKind::Driver, classify(facts), detail);
        built.inner.code = facts.code;
        built.inner.labels = facts.labels.iter().cloned().collect();
        built
    }

    /// The circuit breaker refused the call; try again after `retry_after`.
    pub fn circuit_open(retry_after: Duration) -> Self {
        Self::keel(
            ErrorKind::CircuitOpen,
            ErrorClass::Unavailable,
            true,
            Some(retry_after),
            format!("circuit open: calls fail fast for the next {retry_after:?}"),
        )
    }

    /// Keel shed the call before sending it (checkout wait limit, full queue).
    pub fn overloaded(detail: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::keel(
            ErrorKind::Overloaded,
            ErrorClass::Overloaded,
            true,
            retry_after,
            detail,
        )
    }

    /// The caller's deadline passed before the operation finished.
    pub fn deadline_exceeded(detail: impl Into<String>) -> Self {
        Self::keel(
            ErrorKind::DeadlineExceeded,
            ErrorClass::Timeout,
            false,
            None,
            detail,
        )
    }

    /// One attempt exceeded its time limit; whether it applied is unknown.
    pub fn attempt_timeout(limit: Duration) -> Self {
        Self::keel(
            ErrorKind::AttemptTimeout,
            ErrorClass::Timeout,
            false,
            None,
            format!("attempt did not finish within {limit:?}"),
        )
    }

    /// The client is shutting down (or has); nothing was sent.
    pub fn shutting_down() -> Self {
        Self::keel(
            ErrorKind::ShuttingDown,
            ErrorClass::Unavailable,
            true,
            None,
            "the client is shutting down and accepts no new operations",
        )
    }

    /// No server became reachable within `waited`; nothing was sent.
    pub fn unreachable(waited: Duration) -> Self {
        Self::keel(
            ErrorKind::Unreachable,
            ErrorClass::ServerSelection,
            true,
            None,
            format!("no server became reachable within {waited:?} while reconnecting"),
        )
    }

    /// Every known member of the deployment failed its last checks (a check and its retry:
    /// refused, timed out) and stayed so for `waited`; nothing was sent. Class `Unavailable`: not retried (the
    /// deployment, not this call, is down, so a retry would only hammer it); come back after
    /// `retry_after`. Keel's breaker policy counts it as a failure, so the breaker opens.
    ///
    /// ```
    /// use keel_core::{Error, ErrorClass, ErrorKind, OperationKind};
    /// use std::time::Duration;
    ///
    /// let err = Error::no_member_reachable(Duration::from_secs(1), Duration::from_secs(1));
    /// assert_eq!((err.kind(), err.class()), (ErrorKind::Unreachable, ErrorClass::Unavailable));
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    /// assert!(!err.is_retryable(OperationKind::Read) && !err.class().is_infrastructure());
    /// ```
    pub fn no_member_reachable(waited: Duration, retry_after: Duration) -> Self {
        Self::keel(
            ErrorKind::Unreachable,
            ErrorClass::Unavailable,
            true,
            Some(retry_after),
            format!(
                "no member of the deployment is reachable (every one failed its last check); \
                 failed fast after {waited:?}"
            ),
        )
    }

    /// An attempt was already with the driver (sent, or waiting in the driver's server
    /// selection) when every known member became unreachable, and the outage lasted `grace`:
    /// Keel stopped waiting for it rather than let it wait out the driver's server selection.
    /// Like [`no_member_reachable`](Self::no_member_reachable): class `Unavailable`, not
    /// retried, come back after `retry_after`. Unlike it, the attempt may have reached the
    /// server before the outage, so a write's outcome is unknown.
    ///
    /// ```
    /// use keel_core::{Error, ErrorClass, ErrorKind, OperationKind};
    /// use std::time::Duration;
    ///
    /// let err = Error::no_member_reachable_in_flight(Duration::from_secs(1), Duration::from_secs(1));
    /// assert_eq!((err.kind(), err.class()), (ErrorKind::Unreachable, ErrorClass::Unavailable));
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    /// assert!(!err.proves_not_applied() && !err.is_retryable(OperationKind::Read));
    /// ```
    pub fn no_member_reachable_in_flight(grace: Duration, retry_after: Duration) -> Self {
        Self::keel(
            ErrorKind::Unreachable,
            ErrorClass::Unavailable,
            false,
            Some(retry_after),
            format!(
                "no member of the deployment is reachable (every one failed its last checks); \
                 the attempt in flight was given up {grace:?} after the outage began and may \
                 or may not have been applied"
            ),
        )
    }

    /// Keel's configuration is invalid. The detail is redacted.
    pub fn config(detail: impl Into<String>) -> Self {
        Self::keel(ErrorKind::Config, ErrorClass::Config, true, None, detail)
    }

    /// Where the failure came from.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The class of trouble.
    pub fn class(&self) -> ErrorClass {
        self.inner.classification.class
    }

    /// How severe the failure is for the service.
    pub fn severity(&self) -> Severity {
        self.class().severity()
    }

    /// The server's error code, when the server answered.
    pub fn code(&self) -> Option<i32> {
        self.inner.code
    }

    /// The error labels the server or driver attached.
    pub fn labels(&self) -> &[String] {
        &self.inner.labels
    }

    /// Whether a label is present.
    pub fn has_label(&self, label: &str) -> bool {
        self.inner.labels.iter().any(|l| l == label)
    }

    /// Whether the failure proves the operation never took effect.
    pub fn proves_not_applied(&self) -> bool {
        self.inner.classification.proves_not_applied
    }

    /// Whether the failure is a duplicate-key error.
    pub fn is_duplicate_key(&self) -> bool {
        self.inner
            .code
            .is_some_and(|code| code_tables::DUPLICATE_KEY_CODES.contains(&code))
    }

    /// Whether running an operation of `kind` again is safe and may help, per the retry-safety
    /// table in [`is_retry_safe`]. A caller's deadline that has passed, and a reconnect window
    /// waited out in vain (`Unreachable`), are never retryable.
    pub fn is_retryable(&self, kind: OperationKind) -> bool {
        // `Unreachable` comes after a whole reconnect window (the server-selection timeout)
        // spent waiting: like the driver after a server-selection timeout, trying again would
        // only multiply the wait while the database is down.
        !matches!(
            self.inner.kind,
            ErrorKind::DeadlineExceeded | ErrorKind::Unreachable
        ) && is_retry_safe(self.class(), kind, self.proves_not_applied())
    }

    /// How long to wait before trying again, when the server or a Keel layer said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.classification.retry_after
    }

    /// A message safe to show an end user: no host, credential or internal detail. A duplicate
    /// key says that the thing already exists (see [`DUPLICATE_KEY_MESSAGE`]); every other
    /// error gets its class's [`ErrorClass::user_message`].
    pub fn user_message(&self) -> &'static str {
        if self.is_duplicate_key() {
            DUPLICATE_KEY_MESSAGE
        } else {
            self.class().user_message()
        }
    }

    /// Full detail for logs, credentials redacted.
    pub fn detail(&self) -> &str {
        &self.inner.detail
    }

    /// The driver's own error, when the driver reported the failure.
    ///
    /// Its messages are the driver's, not redacted by Keel: log [`Error`] itself instead.
    pub fn driver_error(&self) -> Option<&mongodb::error::Error> {
        self.inner.driver.as_ref()
    }

    /// How many attempts were made, when a retry layer recorded it.
    pub fn attempts(&self) -> Option<u32> {
        self.inner.attempts.map(|a| a.count)
    }

    /// Why the retry layer stopped trying, when it recorded it.
    pub fn stopped_because(&self) -> Option<&'static str> {
        self.inner.attempts.map(|a| a.stopped_because)
    }

    /// Records how many attempts were made and why trying stopped (a short phrase such as
    /// `"retry budget exhausted"`). Used by retry layers.
    #[must_use]
    pub fn with_attempts(mut self, count: u32, stopped_because: &'static str) -> Self {
        self.inner.attempts = Some(Attempts {
            count,
            stopped_because,
        });
        self
    }

    /// Replaces the retry hint.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.inner.classification.retry_after = retry_after;
        self
    }
}

impl From<mongodb::error::Error> for Error {
    fn from(error: mongodb::error::Error) -> Self {
        Self::from_driver(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.class(), self.inner.detail)?;
        if let Some(code) = self.inner.code {
            write!(f, " (code {code})")?;
        }
        if let Some(attempts) = self.inner.attempts {
            let plural = if attempts.count == 1 { "" } else { "s" };
            write!(
                f,
                " after {} attempt{plural}; stopped: {}",
                attempts.count, attempts.stopped_because
            )?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("class", &self.class())
            .field("code", &self.inner.code)
            .field("labels", &self.inner.labels)
            .field("proves_not_applied", &self.proves_not_applied())
            .field("retry_after", &self.retry_after())
            .field("attempts", &self.inner.attempts)
            .field("detail", &self.inner.detail)
            .finish()
    }
}

impl std::error::Error for Error {}

/// Describes an error's kind for callers matching on text (metrics use [`ErrorClass::as_str`]).
impl ErrorKind {
    /// A short stable name.
    pub fn as_str(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            ErrorKind::Driver => "driver",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::AttemptTimeout => "attempt_timeout",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Config => "config",
        })
    }
}
