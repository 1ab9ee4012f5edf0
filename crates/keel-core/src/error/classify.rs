//! The classifier: every `mongodb::error::Error` mapped to an [`ErrorClass`], following MongoDB's
//! specifications.
//!
//! Classification happens in two steps so every rule can be tested without a server:
//! [`ErrorFacts::from_driver`] extracts what matters (which part of the driver failed, the server
//! code, the labels), and [`classify`] is a pure function of those facts.

use std::{collections::BTreeSet, time::Duration};

use mongodb::error::{ErrorKind as DriverKind, WriteFailure};

use super::{
    ErrorClass,
    code_tables::{self, codes, labels},
};

/// Which part of the driver reported a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DriverFailure {
    /// An I/O error on a connection.
    Io,
    /// DNS (or SRV) resolution failed.
    Dns,
    /// The connection pool was cleared before a connection could be checked out.
    PoolCleared,
    /// Server selection timed out.
    ServerSelection,
    /// Authentication failed.
    Authentication,
    /// An argument given to the driver was invalid.
    InvalidArgument,
    /// The TLS configuration is invalid.
    InvalidTls,
    /// The server answered with a command error (`ok: 0`).
    Command,
    /// A write error (`writeErrors`) on a write command.
    WriteError,
    /// A write concern error (`writeConcernError`): the write applied on the primary.
    WriteConcernError,
    /// A document could not be (de)serialized.
    Serialization,
    /// The server's reply could not be understood.
    InvalidResponse,
    /// The client was shut down.
    ClientShutdown,
    /// Transactions were misused.
    Transaction,
    /// The server is too old for the operation.
    IncompatibleServer,
    /// A change stream lost its resume token.
    MissingResumeToken,
    /// Anything else (internal, custom, GridFS…).
    Other,
}

/// What the classifier looks at in a driver error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorFacts {
    /// Which part of the driver failed.
    pub failure: DriverFailure,
    /// The server's error code, if the server answered.
    pub code: Option<i32>,
    /// Error labels from the server or the driver.
    pub labels: BTreeSet<String>,
    /// The server's backoff hint (`baseBackoffMS`), if any.
    pub base_backoff: Option<Duration>,
}

impl ErrorFacts {
    /// Facts with no code and no label.
    pub fn new(failure: DriverFailure) -> Self {
        Self {
            failure,
            code: None,
            labels: BTreeSet::new(),
            base_backoff: None,
        }
    }

    /// Adds a server error code.
    #[must_use]
    pub fn with_code(mut self, code: i32) -> Self {
        self.code = Some(code);
        self
    }

    /// Adds an error label.
    #[must_use]
    pub fn with_label(mut self, label: &str) -> Self {
        self.labels.insert(label.to_owned());
        self
    }

    /// Whether a label is present.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.contains(label)
    }

    /// Extracts the facts from a driver error.
    pub fn from_driver(error: &mongodb::error::Error) -> Self {
        let (failure, code) = match error.kind.as_ref() {
            DriverKind::Io(_) => (DriverFailure::Io, None),
            DriverKind::DnsResolve { .. } => (DriverFailure::Dns, None),
            DriverKind::ConnectionPoolCleared { .. } => (DriverFailure::PoolCleared, None),
            DriverKind::ServerSelection { .. } => (DriverFailure::ServerSelection, None),
            DriverKind::Authentication { .. } => (DriverFailure::Authentication, None),
            DriverKind::InvalidArgument { .. } => (DriverFailure::InvalidArgument, None),
            DriverKind::InvalidTlsConfig { .. } => (DriverFailure::InvalidTls, None),
            DriverKind::Command(command) => (DriverFailure::Command, Some(command.code)),
            DriverKind::Write(WriteFailure::WriteError(write)) => {
                (DriverFailure::WriteError, Some(write.code))
            }
            DriverKind::Write(WriteFailure::WriteConcernError(wce)) => {
                (DriverFailure::WriteConcernError, Some(wce.code))
            }
            DriverKind::InsertMany(insert) => {
                match (&insert.write_errors, &insert.write_concern_error) {
                    (Some(errors), _) if !errors.is_empty() => {
                        (DriverFailure::WriteError, errors.first().map(|e| e.code))
                    }
                    (_, Some(wce)) => (DriverFailure::WriteConcernError, Some(wce.code)),
                    _ => (DriverFailure::Other, None),
                }
            }
            DriverKind::BulkWrite(bulk) => {
                match (
                    bulk.write_errors.values().next(),
                    bulk.write_concern_errors.first(),
                ) {
                    (Some(write), _) => (DriverFailure::WriteError, Some(write.code)),
                    (None, Some(wce)) => (DriverFailure::WriteConcernError, Some(wce.code)),
                    (None, None) => (DriverFailure::Other, None),
                }
            }
            DriverKind::BsonDeserialization(_) | DriverKind::BsonSerialization(_) => {
                (DriverFailure::Serialization, None)
            }
            DriverKind::InvalidResponse { .. } => (DriverFailure::InvalidResponse, None),
            DriverKind::Shutdown => (DriverFailure::ClientShutdown, None),
            DriverKind::Transaction { .. } => (DriverFailure::Transaction, None),
            DriverKind::IncompatibleServer { .. } => (DriverFailure::IncompatibleServer, None),
            DriverKind::MissingResumeToken => (DriverFailure::MissingResumeToken, None),
            _ => (DriverFailure::Other, None),
        };
        let mut labels: BTreeSet<String> = error.labels().iter().cloned().collect();
        // `contains_label` also looks at the error's source chain, which `labels()` does not.
        for label in [
            labels::RETRYABLE_WRITE_ERROR,
            labels::NO_WRITES_PERFORMED,
            labels::SYSTEM_OVERLOADED_ERROR,
            labels::RETRYABLE_ERROR,
            labels::RESUMABLE_CHANGE_STREAM_ERROR,
        ] {
            if error.contains_label(label) {
                labels.insert(label.to_owned());
            }
        }
        Self {
            failure,
            code,
            labels,
            base_backoff: error.base_backoff(),
        }
    }
}

/// The classifier's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    /// The class of the failure.
    pub class: ErrorClass,
    /// `true` when the failure proves the operation never took effect on any server, which makes
    /// even a non-idempotent write safe to run again.
    pub proves_not_applied: bool,
    /// How long to wait before trying again, when the server said.
    pub retry_after: Option<Duration>,
}

/// Classifies a failure from its facts.
///
/// The rules, in order (first match wins):
///
/// | facts | class | proves not applied |
/// |---|---|---|
/// | label `SystemOverloadedError` | Overloaded | with `NoWritesPerformed` |
/// | `WriteConcernError`, any code | WriteConcern | no (the write applied on the primary) |
/// | I/O error | Network | with `NoWritesPerformed` |
/// | DNS failure | Network | yes (nothing was sent) |
/// | pool cleared | PoolCleared | yes (CMAP spec: raised at checkout) |
/// | server selection | ServerSelection | yes (SDAM spec: before any send) |
/// | authentication | Auth | yes |
/// | invalid argument, (de)serialization, transaction misuse | InvalidInput | yes |
/// | invalid TLS config, incompatible server | Config | yes |
/// | client shut down | Unavailable | yes |
/// | missing resume token | ChangeStream | — |
/// | server code: see [`classify_code`] | | |
/// | anything else | Unknown | no |
pub fn classify(facts: &ErrorFacts) -> Classification {
    let no_writes = facts.has_label(labels::NO_WRITES_PERFORMED);
    let verdict = |class, proves_not_applied| Classification {
        class,
        proves_not_applied: proves_not_applied || no_writes,
        retry_after: facts.base_backoff,
    };
    if facts.has_label(labels::SYSTEM_OVERLOADED_ERROR) {
        return verdict(ErrorClass::Overloaded, false);
    }
    match facts.failure {
        DriverFailure::WriteConcernError => verdict(ErrorClass::WriteConcern, false),
        DriverFailure::Io => verdict(ErrorClass::Network, false),
        DriverFailure::Dns => verdict(ErrorClass::Network, true),
        DriverFailure::PoolCleared => verdict(ErrorClass::PoolCleared, true),
        DriverFailure::ServerSelection => verdict(ErrorClass::ServerSelection, true),
        DriverFailure::Authentication => verdict(ErrorClass::Auth, true),
        DriverFailure::InvalidArgument
        | DriverFailure::Serialization
        | DriverFailure::Transaction => verdict(ErrorClass::InvalidInput, true),
        DriverFailure::InvalidTls | DriverFailure::IncompatibleServer => {
            verdict(ErrorClass::Config, true)
        }
        DriverFailure::ClientShutdown => verdict(ErrorClass::Unavailable, true),
        DriverFailure::MissingResumeToken => verdict(ErrorClass::ChangeStream, false),
        DriverFailure::Command | DriverFailure::WriteError => match facts.code {
            Some(code) => {
                let (class, proves) = classify_code(code);
                verdict(class, proves)
            }
            None => verdict(ErrorClass::Unknown, false),
        },
        DriverFailure::InvalidResponse | DriverFailure::Other => {
            verdict(ErrorClass::Unknown, false)
        }
    }
}

/// Classifies a server error code: the class, and whether the code proves the operation was
/// refused before it did anything.
///
/// Each set is defined, with its source, in [`crate::tables`].
pub fn classify_code(code: i32) -> (ErrorClass, bool) {
    use code_tables::*;
    if NOT_WRITABLE_PRIMARY_CODES.contains(&code) {
        // SDAM: the node refused the operation because it is not primary; nothing was applied.
        (ErrorClass::StateChange, true)
    } else if NODE_IS_RECOVERING_CODES.contains(&code)
        || code == codes::READ_CONCERN_MAJORITY_NOT_AVAILABLE_YET
    {
        (ErrorClass::StateChange, false)
    } else if NETWORK_CODES.contains(&code) {
        (ErrorClass::Network, false)
    } else if OVERLOADED_CODES.contains(&code) {
        // Refused at admission, before execution.
        (ErrorClass::Overloaded, true)
    } else if TIMEOUT_CODES.contains(&code) {
        (ErrorClass::Timeout, false)
    } else if AUTH_CODES.contains(&code) {
        (ErrorClass::Auth, true)
    } else if INVALID_INPUT_CODES.contains(&code) {
        (ErrorClass::InvalidInput, false)
    } else if WRITE_CONCERN_CODES.contains(&code) {
        (ErrorClass::WriteConcern, false)
    } else if CURSOR_CODES.contains(&code) {
        (ErrorClass::Cursor, false)
    } else if CHANGE_STREAM_CODES.contains(&code) {
        (ErrorClass::ChangeStream, false)
    } else {
        (ErrorClass::Unknown, false)
    }
}

/// Whether a change stream may resume after this failure.
///
/// Source: Change Streams specification, "Resumable Error": any network error or server
/// selection failure; for servers ≥ 4.4 an error with the `ResumableChangeStreamError` label;
/// `CursorNotFound` always; for older servers (no labels) the codes in
/// [`code_tables::RESUMABLE_CHANGE_STREAM_CODES_PRE_44`].
pub fn is_resumable_change_stream_error(facts: &ErrorFacts) -> bool {
    match facts.failure {
        DriverFailure::Io | DriverFailure::ServerSelection | DriverFailure::PoolCleared => true,
        DriverFailure::Command => {
            facts.has_label(labels::RESUMABLE_CHANGE_STREAM_ERROR)
                || facts.code == Some(codes::CURSOR_NOT_FOUND)
                || (facts.labels.is_empty()
                    && facts.code.is_some_and(|code| {
                        code_tables::RESUMABLE_CHANGE_STREAM_CODES_PRE_44.contains(&code)
                    }))
        }
        _ => false,
    }
}
