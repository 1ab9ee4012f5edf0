//! One test per row of the HTTP mapping, with the headers and body each answer carries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_core::{DriverFailure, Error, ErrorClass, ErrorFacts, codes};

use super::{DEFAULT_RETRY_AFTER, HttpAnswer, PROBLEM_JSON};

fn facts(failure: DriverFailure) -> ErrorFacts {
    ErrorFacts::new(failure)
}

fn code(code: i32) -> ErrorFacts {
    ErrorFacts::new(DriverFailure::Command).with_code(code)
}

/// The answer, checked for what every answer must hold: the body repeats the status, carries
/// the user-safe message and the class, and leaks nothing of the internal detail.
fn checked(error: &Error, status: u16, retry_after: Option<&str>) -> HttpAnswer {
    let answer = HttpAnswer::from_error(error);
    assert_eq!(answer.status, status, "{error}");
    assert_eq!(
        answer.retry_after_header().as_deref(),
        retry_after,
        "{error}"
    );
    assert_eq!(answer.problem.status, status);
    assert_eq!(answer.problem.type_uri, "about:blank");
    assert_eq!(answer.problem.detail, error.user_message());
    assert_eq!(
        answer.problem.class.as_deref(),
        Some(error.class().as_str())
    );
    let json: serde_json::Value = serde_json::from_str(&answer.to_json()).unwrap();
    assert_eq!(json["status"], status);
    assert_eq!(json["type"], "about:blank");
    assert_eq!(json["detail"], error.user_message());
    assert_eq!(json["class"], error.class().as_str());
    assert!(
        !answer.to_json().contains("secret-host"),
        "{}",
        answer.to_json()
    );
    assert_eq!(
        answer.headers()[0],
        ("content-type", PROBLEM_JSON.to_owned())
    );
    answer
}

#[test]
fn network_failure_is_503_with_the_default_retry_after() {
    let err = Error::from_facts(&facts(DriverFailure::Io), "reset by secret-host:27017");
    let answer = checked(&err, 503, Some("1"));
    assert_eq!(answer.retry_after, Some(DEFAULT_RETRY_AFTER));
    assert_eq!(answer.problem.title, "Service Unavailable");
}

#[test]
fn state_change_is_503() {
    let err = Error::from_facts(
        &code(codes::NOT_WRITABLE_PRIMARY),
        "secret-host stepped down",
    );
    checked(&err, 503, Some("1"));
}

#[test]
fn pool_cleared_is_503() {
    let err = Error::from_facts(
        &facts(DriverFailure::PoolCleared),
        "secret-host pool cleared",
    );
    checked(&err, 503, Some("1"));
}

#[test]
fn server_selection_and_unreachable_are_503() {
    let err = Error::from_facts(&facts(DriverFailure::ServerSelection), "secret-host");
    checked(&err, 503, Some("1"));
    checked(&Error::unreachable(Duration::from_secs(2)), 503, Some("1"));
}

#[test]
fn circuit_open_and_health_gate_are_503_with_their_own_retry_after() {
    // The health gate refuses with the same error (keel-health's `GateError` conversion).
    let answer = checked(
        &Error::circuit_open(Duration::from_millis(4_200)),
        503,
        Some("5"),
    );
    assert_eq!(answer.problem.class.as_deref(), Some("unavailable"));
    assert_eq!(
        answer.headers()[1],
        ("retry-after", "5".to_owned()),
        "rounded up to whole seconds"
    );
    // Never "0": at least one second.
    checked(
        &Error::circuit_open(Duration::from_millis(10)),
        503,
        Some("1"),
    );
    checked(&Error::circuit_open(Duration::ZERO), 503, Some("1"));
}

#[test]
fn shutting_down_is_503() {
    checked(&Error::shutting_down(), 503, Some("1"));
}

#[test]
fn a_lost_cursor_is_503() {
    checked(
        &Error::from_facts(&code(codes::CURSOR_NOT_FOUND), "cursor 7"),
        503,
        Some("1"),
    );
}

#[test]
fn overloaded_is_429_with_the_hint_or_the_default() {
    let hinted = Error::overloaded("checkout wait limit", Some(Duration::from_secs(3)));
    let answer = checked(&hinted, 429, Some("3"));
    assert_eq!(answer.problem.title, "Too Many Requests");
    checked(
        &Error::overloaded("checkout wait limit", None),
        429,
        Some("1"),
    );
}

#[test]
fn deadline_and_attempt_timeout_are_504() {
    let answer = checked(&Error::deadline_exceeded("deadline passed"), 504, Some("1"));
    assert_eq!(answer.problem.title, "Gateway Timeout");
    checked(
        &Error::attempt_timeout(Duration::from_secs(2)),
        504,
        Some("1"),
    );
    let max_time = Error::from_facts(&code(codes::MAX_TIME_MS_EXPIRED), "maxTimeMS");
    checked(&max_time, 504, Some("1"));
}

#[test]
fn write_concern_is_504_without_retry_after() {
    let err = Error::from_facts(
        &facts(DriverFailure::WriteConcernError).with_code(64),
        "wtimeout",
    );
    checked(&err, 504, None);
}

#[test]
fn duplicate_key_is_409_saying_it_already_exists() {
    let err = Error::from_facts(
        &facts(DriverFailure::WriteError).with_code(11000),
        "E11000 duplicate key error collection: app.users index: _id_ dup key secret-host",
    );
    let answer = checked(&err, 409, None);
    assert!(
        answer.problem.detail.contains("already exists"),
        "{answer:?}"
    );
    assert_eq!(answer.problem.title, "Conflict");
}

#[test]
fn other_invalid_input_is_422() {
    let err = Error::from_facts(&code(codes::BAD_VALUE), "bad value for secret-host");
    let answer = checked(&err, 422, None);
    assert_eq!(answer.problem.class.as_deref(), Some("invalid_input"));
}

#[test]
fn auth_config_change_stream_and_unknown_are_500() {
    for err in [
        Error::from_facts(&code(codes::AUTHENTICATION_FAILED), "secret-host auth"),
        Error::config("bad option for secret-host"),
        Error::from_facts(&code(codes::CHANGE_STREAM_HISTORY_LOST), "history lost"),
        Error::from_facts(&facts(DriverFailure::InvalidResponse), "garbled"),
    ] {
        let answer = checked(&err, 500, None);
        assert_eq!(answer.problem.title, "Internal Server Error");
    }
}

#[test]
fn every_class_has_an_answer_and_only_transient_ones_say_when_to_return() {
    for class in ErrorClass::ALL {
        let (status, retry) = super::status_of_class(class);
        assert!((400..600).contains(&status), "{class}");
        assert_eq!(
            retry,
            matches!(status, 503 | 429) || class == ErrorClass::Timeout,
            "{class}"
        );
        assert_eq!(
            status == 503,
            class.is_unavailable() || class == ErrorClass::Cursor,
            "{class}"
        );
    }
}

#[test]
fn a_rejection_has_no_class_and_no_retry_after() {
    let answer = HttpAnswer::rejected(400, "The body is not valid JSON.");
    assert_eq!(answer.retry_after_header(), None);
    assert_eq!(answer.headers().len(), 1);
    assert_eq!(
        answer.to_json(),
        r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"The body is not valid JSON."}"#
    );
}
