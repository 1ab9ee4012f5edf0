//! The RFC 9457 problem-details body of an HTTP answer.

use keel_core::ErrorClass;
use serde::{Deserialize, Serialize};

/// The media type of a problem-details JSON body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem-details object.
///
/// `type` is `about:blank` (RFC 9457 §4.2.1: the problem is what the status says), so `title`
/// is the status's reason phrase. Keel's extension member `class` says which error class it
/// was ([`ErrorClass::as_str`]), absent for requests refused before any database call. Set
/// `type` to a URI of your own API's documentation if you have one.
///
/// ```
/// use mongokeel::http::Problem;
/// let problem = Problem::new(409, "This already exists.");
/// assert_eq!(problem.title, "Conflict");
/// assert_eq!(
///     problem.to_json(),
///     r#"{"type":"about:blank","title":"Conflict","status":409,"detail":"This already exists."}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI reference identifying the problem type.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type: the status's reason phrase.
    pub title: String,
    /// The HTTP status code, repeated for clients that lost it.
    pub status: u16,
    /// What happened, safe to show the client: for a Keel error, its user-safe message.
    pub detail: String,
    /// Keel's error class (`unavailable`, `network`, `overloaded`…), when a Keel error caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

impl Problem {
    /// A problem of type `about:blank` for `status`, saying `detail`.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            type_uri: "about:blank".to_owned(),
            title: reason_phrase(status).to_owned(),
            status,
            detail: detail.into(),
            class: None,
        }
    }

    /// Names the Keel error class that caused the problem.
    #[must_use]
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.class = Some(class.as_str().to_owned());
        self
    }

    /// The body as JSON text.
    pub fn to_json(&self) -> String {
        // A struct of strings and a number always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// The reason phrase of the statuses this module answers with (RFC 9110 §15), and of the usual
/// rejections; "Error" for any other.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}
