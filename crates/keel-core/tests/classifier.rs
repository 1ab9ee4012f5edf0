//! Every row of the classifier's tables and the retry-safety table, tested one by one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keel_core::{
    DriverFailure, Error, ErrorClass, ErrorFacts, OperationKind, Severity, classify, classify_code,
    codes, is_resumable_change_stream_error, is_retry_safe, labels, tables,
};
use mongodb::{
    bson::doc,
    error::{CommandError, ErrorKind as DriverKind, WriteError, WriteFailure},
};

fn command(code: i32) -> ErrorFacts {
    ErrorFacts::new(DriverFailure::Command).with_code(code)
}

/// (code, expected class, proves not applied), one row per code the classifier knows, with the
/// table it comes from.
const CODE_ROWS: &[(i32, ErrorClass, bool)] = &[
    // SDAM "not writable primary": refused before doing anything.
    (codes::NOT_WRITABLE_PRIMARY, ErrorClass::StateChange, true),
    (
        codes::NOT_PRIMARY_NO_SECONDARY_OK,
        ErrorClass::StateChange,
        true,
    ),
    (codes::LEGACY_NOT_PRIMARY, ErrorClass::StateChange, true),
    // SDAM "node is recovering".
    (
        codes::INTERRUPTED_AT_SHUTDOWN,
        ErrorClass::StateChange,
        false,
    ),
    (
        codes::INTERRUPTED_DUE_TO_REPL_STATE_CHANGE,
        ErrorClass::StateChange,
        false,
    ),
    (
        codes::NOT_PRIMARY_OR_SECONDARY,
        ErrorClass::StateChange,
        false,
    ),
    (codes::PRIMARY_STEPPED_DOWN, ErrorClass::StateChange, false),
    (codes::SHUTDOWN_IN_PROGRESS, ErrorClass::StateChange, false),
    (
        codes::READ_CONCERN_MAJORITY_NOT_AVAILABLE_YET,
        ErrorClass::StateChange,
        false,
    ),
    // Network codes.
    (codes::HOST_NOT_FOUND, ErrorClass::Network, false),
    (codes::HOST_UNREACHABLE, ErrorClass::Network, false),
    (codes::NETWORK_TIMEOUT, ErrorClass::Network, false),
    (codes::SOCKET_EXCEPTION, ErrorClass::Network, false),
    // Overload.
    (
        codes::INGRESS_REQUEST_RATE_LIMIT_EXCEEDED,
        ErrorClass::Overloaded,
        true,
    ),
    (
        codes::ADMISSION_QUEUE_OVERFLOW,
        ErrorClass::Overloaded,
        true,
    ),
    // Time limits.
    (codes::MAX_TIME_MS_EXPIRED, ErrorClass::Timeout, false),
    (codes::EXCEEDED_TIME_LIMIT, ErrorClass::Timeout, false),
    // Auth.
    (codes::AUTHENTICATION_FAILED, ErrorClass::Auth, true),
    (codes::UNAUTHORIZED, ErrorClass::Auth, true),
    (codes::USER_NOT_FOUND, ErrorClass::Auth, true),
    (codes::REAUTHENTICATION_REQUIRED, ErrorClass::Auth, true),
    // Invalid input.
    (codes::BAD_VALUE, ErrorClass::InvalidInput, false),
    (codes::FAILED_TO_PARSE, ErrorClass::InvalidInput, false),
    (codes::TYPE_MISMATCH, ErrorClass::InvalidInput, false),
    (codes::INVALID_OPTIONS, ErrorClass::InvalidInput, false),
    (codes::NAMESPACE_NOT_FOUND, ErrorClass::InvalidInput, false),
    (codes::COMMAND_NOT_FOUND, ErrorClass::InvalidInput, false),
    (
        codes::DOCUMENT_VALIDATION_FAILURE,
        ErrorClass::InvalidInput,
        false,
    ),
    (
        codes::BSON_OBJECT_TOO_LARGE,
        ErrorClass::InvalidInput,
        false,
    ),
    (codes::KEY_TOO_LONG, ErrorClass::InvalidInput, false),
    (codes::DUPLICATE_KEY, ErrorClass::InvalidInput, false),
    (
        codes::DUPLICATE_KEY_ON_UPDATE,
        ErrorClass::InvalidInput,
        false,
    ),
    (
        codes::DUPLICATE_KEY_INDEX_BUILD,
        ErrorClass::InvalidInput,
        false,
    ),
    // Write concern.
    (codes::WRITE_CONCERN_FAILED, ErrorClass::WriteConcern, false),
    (
        codes::UNKNOWN_REPL_WRITE_CONCERN,
        ErrorClass::WriteConcern,
        false,
    ),
    (
        codes::UNSATISFIABLE_WRITE_CONCERN,
        ErrorClass::WriteConcern,
        false,
    ),
    // Cursors.
    (codes::CURSOR_NOT_FOUND, ErrorClass::Cursor, false),
    (codes::CURSOR_KILLED, ErrorClass::Cursor, false),
    (codes::QUERY_PLAN_KILLED, ErrorClass::Cursor, false),
    // Change streams.
    (
        codes::CHANGE_STREAM_FATAL_ERROR,
        ErrorClass::ChangeStream,
        false,
    ),
    (
        codes::CHANGE_STREAM_HISTORY_LOST,
        ErrorClass::ChangeStream,
        false,
    ),
    (codes::RETRY_CHANGE_STREAM, ErrorClass::ChangeStream, false),
    // Unknown codes stay unknown.
    (424_242, ErrorClass::Unknown, false),
];

#[test]
fn every_code_row_classifies_as_documented() {
    for &(code, class, proves) in CODE_ROWS {
        assert_eq!(classify_code(code), (class, proves), "code {code}");
        let verdict = classify(&command(code));
        assert_eq!(verdict.class, class, "command error with code {code}");
        assert_eq!(verdict.proves_not_applied, proves, "code {code}");
    }
}

#[test]
fn every_code_in_every_table_has_a_row() {
    let all_tables: Vec<&[i32]> = vec![
        &tables::RETRYABLE_READ_CODES,
        &tables::NOT_WRITABLE_PRIMARY_CODES,
        &tables::NODE_IS_RECOVERING_CODES,
        &tables::NETWORK_CODES,
        &tables::OVERLOADED_CODES,
        &tables::TIMEOUT_CODES,
        &tables::AUTH_CODES,
        &tables::INVALID_INPUT_CODES,
        &tables::DUPLICATE_KEY_CODES,
        &tables::WRITE_CONCERN_CODES,
        &tables::CURSOR_CODES,
        &tables::CHANGE_STREAM_CODES,
    ];
    for table in all_tables {
        for code in table {
            assert!(
                CODE_ROWS.iter().any(|(row, ..)| row == code),
                "code {code} has no test row"
            );
        }
    }
}

/// Retryable Reads spec: exactly these 13 codes, and each is retryable for a read.
#[test]
fn retryable_read_codes_match_the_spec_and_are_retried_for_reads() {
    let mut spec = [
        262, 11600, 11602, 10107, 13435, 13436, 189, 134, 91, 7, 6, 89, 9001,
    ];
    let mut ours = tables::RETRYABLE_READ_CODES;
    spec.sort_unstable();
    ours.sort_unstable();
    assert_eq!(ours, spec);
    for code in tables::RETRYABLE_READ_CODES {
        let err = Error::from_facts(&command(code), "x");
        assert!(err.is_retryable(OperationKind::Read), "code {code}");
    }
}

/// (driver failure, class, proves not applied)
const FAILURE_ROWS: &[(DriverFailure, ErrorClass, bool)] = &[
    (DriverFailure::Io, ErrorClass::Network, false),
    (DriverFailure::Dns, ErrorClass::Network, true),
    (DriverFailure::PoolCleared, ErrorClass::PoolCleared, true),
    (
        DriverFailure::ServerSelection,
        ErrorClass::ServerSelection,
        true,
    ),
    (DriverFailure::Authentication, ErrorClass::Auth, true),
    (
        DriverFailure::InvalidArgument,
        ErrorClass::InvalidInput,
        true,
    ),
    (DriverFailure::Serialization, ErrorClass::InvalidInput, true),
    (DriverFailure::Transaction, ErrorClass::InvalidInput, true),
    (DriverFailure::InvalidTls, ErrorClass::Config, true),
    (DriverFailure::IncompatibleServer, ErrorClass::Config, true),
    (DriverFailure::ClientShutdown, ErrorClass::Unavailable, true),
    (
        DriverFailure::MissingResumeToken,
        ErrorClass::ChangeStream,
        false,
    ),
    (
        DriverFailure::WriteConcernError,
        ErrorClass::WriteConcern,
        false,
    ),
    (DriverFailure::InvalidResponse, ErrorClass::Unknown, false),
    (DriverFailure::Other, ErrorClass::Unknown, false),
    (DriverFailure::Command, ErrorClass::Unknown, false),
    (DriverFailure::WriteError, ErrorClass::Unknown, false),
];

#[test]
fn every_driver_failure_row_classifies_as_documented() {
    for &(failure, class, proves) in FAILURE_ROWS {
        let verdict = classify(&ErrorFacts::new(failure));
        assert_eq!(verdict.class, class, "{failure:?}");
        assert_eq!(verdict.proves_not_applied, proves, "{failure:?}");
    }
}

#[test]
fn write_concern_error_is_write_concern_whatever_its_code() {
    // A writeConcernError carrying a state-change code still means the write applied.
    let facts = ErrorFacts::new(DriverFailure::WriteConcernError).with_code(91);
    assert_eq!(classify(&facts).class, ErrorClass::WriteConcern);
    let err = Error::from_facts(&facts, "wc");
    assert!(!err.is_retryable(OperationKind::Write { idempotent: true }));
}

#[test]
fn label_rows() {
    // SystemOverloadedError wins over the failure kind.
    let overloaded = ErrorFacts::new(DriverFailure::Io).with_label(labels::SYSTEM_OVERLOADED_ERROR);
    assert_eq!(classify(&overloaded).class, ErrorClass::Overloaded);
    assert!(!classify(&overloaded).proves_not_applied);
    // NoWritesPerformed proves a write was not applied, whatever the class.
    let no_writes = ErrorFacts::new(DriverFailure::Io).with_label(labels::NO_WRITES_PERFORMED);
    assert!(classify(&no_writes).proves_not_applied);
    let err = Error::from_facts(&no_writes, "reset");
    assert!(err.is_retryable(OperationKind::Write { idempotent: false }));
    assert!(err.has_label(labels::NO_WRITES_PERFORMED));
    // RetryableWriteError alone does not prove anything for a Keel-level retry (that label is
    // for the driver's same-txnNumber retry).
    let rwe = command(91).with_label(labels::RETRYABLE_WRITE_ERROR);
    let err = Error::from_facts(&rwe, "shutdown");
    assert!(!err.is_retryable(OperationKind::Write { idempotent: false }));
    assert!(err.is_retryable(OperationKind::Write { idempotent: true }));
}

const KINDS: [OperationKind; 5] = [
    OperationKind::Read,
    OperationKind::Write { idempotent: true },
    OperationKind::Write { idempotent: false },
    OperationKind::Command { idempotent: true },
    OperationKind::Command { idempotent: false },
];

/// The whole retry-safety table: every class × kind × proves-not-applied cell.
#[test]
fn retry_safety_table_every_cell() {
    use ErrorClass::*;
    let transient = [
        Network,
        StateChange,
        PoolCleared,
        ServerSelection,
        Overloaded,
        Timeout,
    ];
    for class in ErrorClass::ALL {
        for kind in KINDS {
            for proves in [false, true] {
                let expected = transient.contains(&class) && (kind.is_idempotent() || proves);
                assert_eq!(
                    is_retry_safe(class, kind, proves),
                    expected,
                    "{class:?} × {kind:?} × proves_not_applied={proves}"
                );
            }
        }
    }
    // Spot-check the cells the design notes spell out.
    assert!(!is_retry_safe(Auth, OperationKind::Read, true));
    assert!(!is_retry_safe(Config, OperationKind::Read, true));
    assert!(!is_retry_safe(InvalidInput, OperationKind::Read, true));
    assert!(!is_retry_safe(
        Network,
        OperationKind::Write { idempotent: false },
        false
    ));
    assert!(is_retry_safe(
        ServerSelection,
        OperationKind::Write { idempotent: false },
        true
    ));
}

#[test]
fn keel_errors_classify_and_retry_as_documented() {
    use std::time::Duration;
    let non_idempotent = OperationKind::Write { idempotent: false };

    let open = Error::circuit_open(Duration::from_secs(3));
    assert_eq!(open.class(), ErrorClass::Unavailable);
    assert_eq!(open.retry_after(), Some(Duration::from_secs(3)));
    assert!(!open.is_retryable(OperationKind::Read));

    let shed = Error::overloaded("checkout wait limit of 50ms reached", None);
    assert!(shed.is_retryable(non_idempotent), "nothing was sent");

    let deadline = Error::deadline_exceeded("caller deadline passed");
    assert_eq!(deadline.class(), ErrorClass::Timeout);
    assert!(
        !deadline.is_retryable(OperationKind::Read),
        "never retry past the deadline"
    );

    let attempt = Error::attempt_timeout(Duration::from_millis(200));
    assert!(attempt.is_retryable(OperationKind::Read));
    assert!(
        !attempt.is_retryable(non_idempotent),
        "the write may have applied"
    );

    let closing = Error::shutting_down();
    assert_eq!(closing.class(), ErrorClass::Unavailable);
    assert!(!closing.is_retryable(OperationKind::Read));

    let unreachable = Error::unreachable(Duration::from_secs(2));
    assert_eq!(unreachable.class(), ErrorClass::ServerSelection);
    assert!(unreachable.proves_not_applied(), "nothing was sent");
    assert!(
        !unreachable.is_retryable(OperationKind::Read),
        "it already waited a whole reconnect window"
    );

    let config = Error::config("min pool size 20 exceeds max pool size 10");
    assert_eq!(config.severity(), Severity::Fatal);
}

#[test]
fn severity_orders_classes() {
    assert_eq!(ErrorClass::InvalidInput.severity(), Severity::Caller);
    assert_eq!(ErrorClass::Network.severity(), Severity::Transient);
    assert_eq!(ErrorClass::ServerSelection.severity(), Severity::Degraded);
    assert_eq!(ErrorClass::Auth.severity(), Severity::Fatal);
    assert!(Severity::Caller < Severity::Transient && Severity::Degraded < Severity::Fatal);
}

#[test]
fn user_messages_reveal_nothing_internal() {
    let names: std::collections::HashSet<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names.len(),
        ErrorClass::ALL.len(),
        "class names are distinct"
    );
    for class in ErrorClass::ALL {
        let msg = class.user_message().to_lowercase();
        for leak in [
            "mongo",
            "host",
            "code",
            "password",
            "127.0.0.1",
            "error:",
            "driver",
        ] {
            assert!(!msg.contains(leak), "{class:?}: {msg}");
        }
    }
}

#[test]
fn infrastructure_classes_exclude_the_callers_problems() {
    assert!(!ErrorClass::InvalidInput.is_infrastructure());
    assert!(!ErrorClass::Unavailable.is_infrastructure());
    assert!(ErrorClass::Network.is_infrastructure());
    assert!(ErrorClass::ServerSelection.is_infrastructure());
}

/// Change Streams spec, "Resumable Error".
#[test]
fn resumable_change_stream_rows() {
    assert!(is_resumable_change_stream_error(&ErrorFacts::new(
        DriverFailure::Io
    )));
    assert!(is_resumable_change_stream_error(&ErrorFacts::new(
        DriverFailure::ServerSelection
    )));
    assert!(is_resumable_change_stream_error(
        &command(280).with_label(labels::RESUMABLE_CHANGE_STREAM_ERROR)
    ));
    assert!(is_resumable_change_stream_error(&command(
        codes::CURSOR_NOT_FOUND
    )));
    // Pre-4.4 servers send no labels: the code list decides.
    for code in tables::RESUMABLE_CHANGE_STREAM_CODES_PRE_44 {
        assert!(
            is_resumable_change_stream_error(&command(code)),
            "code {code}"
        );
    }
    assert!(!is_resumable_change_stream_error(&command(
        codes::CHANGE_STREAM_HISTORY_LOST
    )));
    assert!(!is_resumable_change_stream_error(
        &command(codes::BAD_VALUE).with_label(labels::RETRYABLE_WRITE_ERROR)
    ));
    assert!(!is_resumable_change_stream_error(&ErrorFacts::new(
        DriverFailure::Authentication
    )));
}

// Real driver errors, built the way the driver builds them.

fn driver_command_error(code: i32, message: &str) -> mongodb::error::Error {
    let command: CommandError = mongodb::bson::from_document(doc! {
        "code": code, "codeName": "Test", "errmsg": message,
    })
    .unwrap();
    DriverKind::Command(command).into()
}

#[test]
fn driver_io_error_is_network() {
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    let err = Error::from(mongodb::error::Error::from(io));
    assert_eq!(err.class(), ErrorClass::Network);
    assert!(err.is_retryable(OperationKind::Read));
    assert!(!err.is_retryable(OperationKind::Write { idempotent: false }));
    assert!(err.driver_error().is_some());
}

#[test]
fn driver_command_error_keeps_its_code() {
    let err = Error::from(driver_command_error(10107, "not primary"));
    assert_eq!(err.code(), Some(10107));
    assert_eq!(err.class(), ErrorClass::StateChange);
    assert!(err.proves_not_applied());
    assert!(err.to_string().contains("code 10107"));
}

#[test]
fn driver_write_errors_classify_by_code() {
    let dup: WriteError = mongodb::bson::from_document(doc! {
        "code": 11000, "errmsg": "E11000 duplicate key error collection: app.users index: _id_",
    })
    .unwrap();
    let err = Error::from(mongodb::error::Error::from(DriverKind::Write(
        WriteFailure::WriteError(dup),
    )));
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert!(err.is_duplicate_key());
    assert!(!err.is_retryable(OperationKind::Write { idempotent: true }));
    assert_eq!(err.user_message(), keel_core::DUPLICATE_KEY_MESSAGE);
    assert!(err.user_message().contains("already exists"));

    let wce: mongodb::error::WriteConcernError = mongodb::bson::from_document(doc! {
        "code": 64, "errmsg": "waiting for replication timed out",
        "errorLabels": [labels::RETRYABLE_WRITE_ERROR],
    })
    .unwrap();
    let err = Error::from(mongodb::error::Error::from(DriverKind::Write(
        WriteFailure::WriteConcernError(wce),
    )));
    assert_eq!(err.class(), ErrorClass::WriteConcern);
    assert!(
        err.has_label(labels::RETRYABLE_WRITE_ERROR),
        "labels travel from the wce"
    );
}

#[test]
fn driver_shutdown_is_unavailable() {
    let err = Error::from(mongodb::error::Error::from(DriverKind::Shutdown));
    assert_eq!(err.class(), ErrorClass::Unavailable);
}

/// A real server-selection failure from the driver: nothing listens on the port.
#[tokio::test]
async fn real_server_selection_failure_is_classified() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let uri = format!(
        "mongodb://app:Sup3rSecret@127.0.0.1:{port}/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
    );
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let failure = client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap_err();
    let err = Error::from(failure);
    assert_eq!(err.class(), ErrorClass::ServerSelection);
    assert!(err.proves_not_applied());
    assert!(err.is_retryable(OperationKind::Write { idempotent: false }));
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        err.user_message().to_owned(),
    ] {
        assert!(!shown.contains("Sup3rSecret"), "{shown}");
    }
}

#[test]
fn detail_is_redacted_and_attempts_are_reported() {
    let facts = ErrorFacts::new(DriverFailure::Io);
    let err = Error::from_facts(&facts, "cannot reach mongodb://root:Pa55word@db:27017/")
        .with_attempts(3, "max attempts reached");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("Pa55word"), "{shown}");
    assert!(shown.contains("db:27017"));
    assert!(
        err.to_string()
            .ends_with("after 3 attempts; stopped: max attempts reached")
    );
    assert_eq!(err.attempts(), Some(3));
    assert_eq!(err.stopped_because(), Some("max attempts reached"));
}

#[test]
fn only_a_duplicate_key_says_that_the_thing_already_exists() {
    for code in tables::DUPLICATE_KEY_CODES {
        let err = Error::from_facts(
            &ErrorFacts::new(DriverFailure::WriteError).with_code(code),
            "E11000 duplicate key error collection: app.users index: _id_",
        );
        assert!(err.user_message().contains("already exists"), "{code}");
        assert!(!err.user_message().contains("app.users"), "{code}");
    }
    let bad = Error::from_facts(
        &ErrorFacts::new(DriverFailure::Command).with_code(codes::BAD_VALUE),
        "bad value",
    );
    assert_eq!(bad.user_message(), ErrorClass::InvalidInput.user_message());
    assert!(!bad.user_message().contains("already exists"));
}

#[test]
fn keel_refusals_and_outages_are_unavailable() {
    use std::time::Duration;
    for err in [
        Error::circuit_open(Duration::from_secs(1)),
        Error::shutting_down(),
        Error::unreachable(Duration::from_secs(1)),
        Error::from_facts(&ErrorFacts::new(DriverFailure::Io), "connection reset"),
        Error::from_facts(
            &ErrorFacts::new(DriverFailure::ServerSelection),
            "no server",
        ),
        Error::from_facts(&ErrorFacts::new(DriverFailure::PoolCleared), "pool cleared"),
        Error::from_facts(&command(codes::NOT_WRITABLE_PRIMARY), "not primary"),
        Error::from(mongodb::error::Error::from(DriverKind::Shutdown)),
    ] {
        assert!(err.class().is_unavailable(), "{err}");
    }
    for err in [
        Error::overloaded("checkout wait limit reached", None),
        Error::deadline_exceeded("deadline passed"),
        Error::config("bad option"),
    ] {
        assert!(!err.class().is_unavailable(), "{err}");
    }
}
