//! HTTP answers for Keel errors: one documented mapping from [`keel_core::Error`] to a status,
//! a `Retry-After` header and an RFC 9457 problem-details body, as plain data for any framework
//! (with the `axum` feature, also as axum responses and extractors).
//!
//! | error | status | `Retry-After` |
//! |---|---|---|
//! | [`ErrorClass::is_unavailable`]: network, state change, pool cleared, server selection / unreachable, circuit open, health gate, shutting down | 503 Service Unavailable | `retry_after()`, else [`DEFAULT_RETRY_AFTER`] |
//! | `Cursor` (the cursor is gone: the request can simply be made again) | 503 Service Unavailable | `retry_after()`, else [`DEFAULT_RETRY_AFTER`] |
//! | `Overloaded` (server or Keel shedding load) | 429 Too Many Requests | `retry_after()`, else [`DEFAULT_RETRY_AFTER`] |
//! | `Timeout` (attempt, deadline, `maxTimeMS`) | 504 Gateway Timeout | `retry_after()`, else [`DEFAULT_RETRY_AFTER`] |
//! | `WriteConcern` (applied on the primary, not confirmed in time) | 504 Gateway Timeout | none |
//! | `InvalidInput` with a duplicate key | 409 Conflict | none |
//! | other `InvalidInput` (validation, bad value) | 422 Unprocessable Content | none |
//! | `Auth`, `Config` (the service is misconfigured), `ChangeStream`, `Unknown` | 500 Internal Server Error | none |
//!
//! Why these: 503 is what load balancers, clients and retry libraries read as "come back after
//! `Retry-After`", so it is the answer for every way the database is unavailable, whoever
//! noticed (the breaker's own refusals included). A deadline is 504, not 503, as gRPC keeps
//! `DEADLINE_EXCEEDED` apart from `UNAVAILABLE`: the database did not answer in time and a write
//! may have applied, so a client repeats only what is safe to repeat. A write-concern failure
//! is 504 without `Retry-After` for the same reason, stronger: the write did apply. 429 is what
//! the issue tracker asked for overload, with the server's or Keel's backoff hint. 500 is kept
//! for what a client can do nothing about and that needs a fix on the service's side.
//!
//! The body's `detail` is always [`Error::user_message`]: never a host, a credential or the
//! driver's message. Log the [`Error`] itself (its `Display` is redacted) for the detail.
//!
//! ```
//! use keel_core::Error;
//! use mongokeel::http::HttpAnswer;
//! use std::time::Duration;
//!
//! let answer = HttpAnswer::from_error(&Error::circuit_open(Duration::from_millis(4_200)));
//! assert_eq!(answer.status, 503);
//! assert_eq!(answer.retry_after_header().as_deref(), Some("5"));
//! assert_eq!(answer.problem.class.as_deref(), Some("unavailable"));
//! assert!(answer.to_json().contains(r#""status":503"#));
//! ```

#[cfg(feature = "axum")]
mod axum_response;
mod problem;

use std::time::Duration;

use keel_core::{Error, ErrorClass};

#[cfg(feature = "axum")]
pub use axum_response::{ErrorResponse, Json, Path};
pub use problem::{PROBLEM_JSON, Problem};

/// `Retry-After` when the error carries no hint of its own (`retry_after()` is `None`): long
/// enough that a client does not hammer a database that is down, short enough that a blip
/// costs one second.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// An HTTP answer as data: status, `Retry-After` and a problem-details body. Build it with
/// [`HttpAnswer::from_error`] (the mapping in the [module documentation](self)) or
/// [`HttpAnswer::rejected`] for a request the service refused before calling the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The HTTP status code.
    pub status: u16,
    /// When the client may try again; sent as `Retry-After` in whole seconds, rounded up.
    pub retry_after: Option<Duration>,
    /// The RFC 9457 body.
    pub problem: Problem,
}

impl HttpAnswer {
    /// The answer for a Keel error, by the table in the [module documentation](self).
    pub fn from_error(error: &Error) -> Self {
        let class = error.class();
        let (status, retry) = status_of(error);
        let retry_after = retry.then(|| error.retry_after().unwrap_or(DEFAULT_RETRY_AFTER));
        Self {
            status,
            retry_after,
            problem: Problem::new(status, error.user_message()).with_class(class),
        }
    }

    /// The answer for a request refused before any database call (a malformed body, a bad path
    /// parameter): `status` with `detail` (which must be safe to show the client) and no
    /// `Retry-After`.
    pub fn rejected(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            retry_after: None,
            problem: Problem::new(status, detail),
        }
    }

    /// The `Retry-After` value (RFC 9110 §10.2.3 delay-seconds: whole seconds, rounded up, at
    /// least 1), when there is one.
    pub fn retry_after_header(&self) -> Option<String> {
        self.retry_after.map(|wait| {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            secs.max(1).to_string()
        })
    }

    /// Every header to send, as (name, value): `content-type` and, when set, `retry-after`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("content-type", PROBLEM_JSON.to_owned())];
        if let Some(value) = self.retry_after_header() {
            headers.push(("retry-after", value));
        }
        headers
    }

    /// The body as JSON text.
    pub fn to_json(&self) -> String {
        self.problem.to_json()
    }
}

impl From<&Error> for HttpAnswer {
    fn from(error: &Error) -> Self {
        Self::from_error(error)
    }
}

/// The status for an error, and whether the answer says when to come back.
fn status_of(error: &Error) -> (u16, bool) {
    if error.class() == ErrorClass::InvalidInput && error.is_duplicate_key() {
        return (409, false);
    }
    status_of_class(error.class())
}

/// The status for a class (a duplicate key aside), and whether the answer says when to come
/// back.
fn status_of_class(class: ErrorClass) -> (u16, bool) {
    if class.is_unavailable() {
        return (503, true);
    }
    match class {
        ErrorClass::Cursor => (503, true),
        ErrorClass::Overloaded => (429, true),
        ErrorClass::Timeout => (504, true),
        ErrorClass::WriteConcern => (504, false),
        ErrorClass::InvalidInput => (422, false),
        // Auth, Config, ChangeStream, Unknown, and any class added later: a fix on the service's
        // side, not something a client can retry its way out of.
        _ => (500, false),
    }
}

#[cfg(test)]
mod tests;
