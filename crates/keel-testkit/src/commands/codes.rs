//! Server error codes and their names, from mongod's `src/mongo/base/error_codes.yml`.

/// BadValue.
pub(crate) const BAD_VALUE: i32 = 2;
/// FailedToParse.
pub(crate) const FAILED_TO_PARSE: i32 = 9;
/// TypeMismatch.
pub(crate) const TYPE_MISMATCH: i32 = 14;
/// ProtocolError: a malformed wire message.
pub(crate) const PROTOCOL_ERROR: i32 = 17;
/// NamespaceNotFound.
pub(crate) const NAMESPACE_NOT_FOUND: i32 = 26;
/// IndexNotFound.
pub(crate) const INDEX_NOT_FOUND: i32 = 27;
/// PathNotViable.
pub(crate) const PATH_NOT_VIABLE: i32 = 28;
/// CursorNotFound.
pub(crate) const CURSOR_NOT_FOUND: i32 = 43;
/// NamespaceExists.
pub(crate) const NAMESPACE_EXISTS: i32 = 48;
/// CommandNotFound.
pub(crate) const COMMAND_NOT_FOUND: i32 = 59;
/// ImmutableField.
pub(crate) const IMMUTABLE_FIELD: i32 = 66;
/// InvalidOptions.
pub(crate) const INVALID_OPTIONS: i32 = 72;
/// InvalidNamespace.
pub(crate) const INVALID_NAMESPACE: i32 = 73;
/// IndexOptionsConflict.
pub(crate) const INDEX_OPTIONS_CONFLICT: i32 = 85;
/// IndexKeySpecsConflict.
pub(crate) const INDEX_KEY_SPECS_CONFLICT: i32 = 86;
/// CommandNotSupported.
pub(crate) const COMMAND_NOT_SUPPORTED: i32 = 115;
/// Unauthorized.
pub(crate) const UNAUTHORIZED: i32 = 13;
/// NoReplicationEnabled: a replica-set command on a standalone.
pub(crate) const NO_REPLICATION_ENABLED: i32 = 76;
/// ExceededTimeLimit.
pub(crate) const EXCEEDED_TIME_LIMIT: i32 = 262;
/// NotWritablePrimary: a write reached a member that is not primary.
pub(crate) const NOT_WRITABLE_PRIMARY: i32 = 10107;
/// NotPrimaryNoSecondaryOk: a read reached a secondary without a secondary read preference.
pub(crate) const NOT_PRIMARY_NO_SECONDARY_OK: i32 = 13435;
/// NotPrimaryOrSecondary: the member is neither primary nor secondary (e.g. recovering).
pub(crate) const NOT_PRIMARY_OR_SECONDARY: i32 = 13436;
/// InterruptedDueToReplStateChange: an operation interrupted by a step-down.
pub(crate) const INTERRUPTED_DUE_TO_REPL_STATE_CHANGE: i32 = 11602;
/// PrimarySteppedDown.
pub(crate) const PRIMARY_STEPPED_DOWN: i32 = 189;
/// WriteConcernFailed (named WriteConcernTimeout by newer mongod): `wtimeout` expired.
pub(crate) const WRITE_CONCERN_TIMEOUT: i32 = 64;
/// IllegalOperation.
pub(crate) const ILLEGAL_OPERATION: i32 = 20;
/// NoMatchingDocument: a required pre- or post-image is missing.
pub(crate) const NO_MATCHING_DOCUMENT: i32 = 47;
/// InvalidResumeToken.
pub(crate) const INVALID_RESUME_TOKEN: i32 = 260;
/// ChangeStreamFatalError.
pub(crate) const CHANGE_STREAM_FATAL_ERROR: i32 = 280;
/// ChangeStreamHistoryLost: the resume point is no longer in the oplog.
pub(crate) const CHANGE_STREAM_HISTORY_LOST: i32 = 286;
/// `$changeStream` on a standalone (mongod's assertion 40573).
pub(crate) const CHANGE_STREAM_NOT_SUPPORTED: i32 = 40573;
/// AuthenticationFailed.
pub(crate) const AUTHENTICATION_FAILED: i32 = 18;
/// MechanismUnavailable.
pub(crate) const MECHANISM_UNAVAILABLE: i32 = 334;
/// UnsupportedOpQueryCommand: only the handshake may use OP_QUERY since MongoDB 6.0.
pub(crate) const UNSUPPORTED_OP_QUERY_COMMAND: i32 = 352;
/// BSONObjectTooLarge.
pub(crate) const BSON_OBJECT_TOO_LARGE: i32 = 10334;
/// DuplicateKey.
pub(crate) const DUPLICATE_KEY: i32 = 11000;
/// OP_MSG without `$db` (mongod's assertion id, reported as `Location40571`).
pub(crate) const MISSING_DB: i32 = 40571;

/// The `codeName` mongod reports; unknown codes print as `Location<code>` as mongod does.
pub(crate) fn name(code: i32) -> String {
    let known = match code {
        1 => "InternalError",
        2 => "BadValue",
        6 => "HostUnreachable",
        7 => "HostNotFound",
        8 => "UnknownError",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        17 => "ProtocolError",
        18 => "AuthenticationFailed",
        20 => "IllegalOperation",
        26 => "NamespaceNotFound",
        27 => "IndexNotFound",
        28 => "PathNotViable",
        43 => "CursorNotFound",
        47 => "NoMatchingDocument",
        48 => "NamespaceExists",
        50 => "MaxTimeMSExpired",
        59 => "CommandNotFound",
        64 => "WriteConcernFailed",
        66 => "ImmutableField",
        67 => "CannotCreateIndex",
        72 => "InvalidOptions",
        73 => "InvalidNamespace",
        76 => "NoReplicationEnabled",
        79 => "UnknownReplWriteConcern",
        85 => "IndexOptionsConflict",
        86 => "IndexKeySpecsConflict",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        96 => "OperationFailed",
        100 => "UnsatisfiableWriteConcern",
        112 => "WriteConflict",
        115 => "CommandNotSupported",
        121 => "DocumentValidationFailure",
        134 => "ReadConcernMajorityNotAvailableYet",
        149 => "ViewDepthLimitExceeded",
        166 => "CommandNotSupportedOnView",
        189 => "PrimarySteppedDown",
        225 => "TransactionTooOld",
        237 => "CursorKilled",
        251 => "NoSuchTransaction",
        256 => "TransactionCommitted",
        260 => "InvalidResumeToken",
        262 => "ExceededTimeLimit",
        263 => "OperationNotSupportedInTransaction",
        280 => "ChangeStreamFatalError",
        286 => "ChangeStreamHistoryLost",
        334 => "MechanismUnavailable",
        352 => "UnsupportedOpQueryCommand",
        462 => "IngressRequestRateLimitExceeded",
        9001 => "SocketException",
        10107 => "NotWritablePrimary",
        10334 => "BSONObjectTooLarge",
        11000 => "DuplicateKey",
        11600 => "InterruptedAtShutdown",
        11602 => "InterruptedDueToReplStateChange",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        _ => return format!("Location{code}"),
    };
    known.to_owned()
}
