//! MongoDB server error codes and labels Keel reasons about, each table citing its source.
//!
//! Names follow the server's `error_codes.yml`. Only codes the classifier uses are listed.

/// Server error codes, by their server name.
pub mod codes {
    /// A value had the wrong shape or range.
    pub const BAD_VALUE: i32 = 2;
    /// The host could not be resolved.
    pub const HOST_UNREACHABLE: i32 = 6;
    /// The host name was not found.
    pub const HOST_NOT_FOUND: i32 = 7;
    /// Parsing failed.
    pub const FAILED_TO_PARSE: i32 = 9;
    /// User not found (authentication).
    pub const USER_NOT_FOUND: i32 = 11;
    /// The caller lacks the privilege for the command.
    pub const UNAUTHORIZED: i32 = 13;
    /// A value had the wrong BSON type.
    pub const TYPE_MISMATCH: i32 = 14;
    /// Credentials were rejected.
    pub const AUTHENTICATION_FAILED: i32 = 18;
    /// An argument was not valid.
    pub const INVALID_OPTIONS: i32 = 72;
    /// The namespace does not exist.
    pub const NAMESPACE_NOT_FOUND: i32 = 26;
    /// The cursor id is unknown to the server.
    pub const CURSOR_NOT_FOUND: i32 = 43;
    /// `maxTimeMS` elapsed on the server.
    pub const MAX_TIME_MS_EXPIRED: i32 = 50;
    /// The command is not known to the server.
    pub const COMMAND_NOT_FOUND: i32 = 59;
    /// The write concern could not be satisfied in time.
    pub const WRITE_CONCERN_FAILED: i32 = 64;
    /// Stale shard version (resumable change-stream code on old servers).
    pub const STALE_SHARD_VERSION: i32 = 63;
    /// The write concern names an unknown tag set.
    pub const UNKNOWN_REPL_WRITE_CONCERN: i32 = 79;
    /// A network operation timed out.
    pub const NETWORK_TIMEOUT: i32 = 89;
    /// The server is shutting down.
    pub const SHUTDOWN_IN_PROGRESS: i32 = 91;
    /// The write concern cannot be satisfied by this deployment.
    pub const UNSATISFIABLE_WRITE_CONCERN: i32 = 100;
    /// The document failed the collection's validator.
    pub const DOCUMENT_VALIDATION_FAILURE: i32 = 121;
    /// No member matches the read preference (resumable change-stream code).
    pub const FAILED_TO_SATISFY_READ_PREFERENCE: i32 = 133;
    /// A majority read concern cannot be served yet.
    pub const READ_CONCERN_MAJORITY_NOT_AVAILABLE_YET: i32 = 134;
    /// Stale epoch (resumable change-stream code on old servers).
    pub const STALE_EPOCH: i32 = 150;
    /// The query plan was killed (collection dropped, index dropped…).
    pub const QUERY_PLAN_KILLED: i32 = 175;
    /// The primary stepped down during the operation.
    pub const PRIMARY_STEPPED_DOWN: i32 = 189;
    /// The change stream must be re-established (resumable).
    pub const RETRY_CHANGE_STREAM: i32 = 234;
    /// The cursor was killed.
    pub const CURSOR_KILLED: i32 = 237;
    /// The operation exceeded a server time limit.
    pub const EXCEEDED_TIME_LIMIT: i32 = 262;
    /// A change stream hit an unrecoverable error.
    pub const CHANGE_STREAM_FATAL_ERROR: i32 = 280;
    /// The resume point is no longer in the oplog.
    pub const CHANGE_STREAM_HISTORY_LOST: i32 = 286;
    /// The connection must re-authenticate.
    pub const REAUTHENTICATION_REQUIRED: i32 = 391;
    /// The server refused the request because of its ingress rate limiter.
    pub const INGRESS_REQUEST_RATE_LIMIT_EXCEEDED: i32 = 462;
    /// The server refused the request because it is overloaded.
    pub const ADMISSION_QUEUE_OVERFLOW: i32 = 365;
    /// Duplicate key.
    pub const DUPLICATE_KEY: i32 = 11000;
    /// Duplicate key (legacy update path).
    pub const DUPLICATE_KEY_ON_UPDATE: i32 = 11001;
    /// Interrupted because the server is shutting down.
    pub const INTERRUPTED_AT_SHUTDOWN: i32 = 11600;
    /// Interrupted by a replica-set state change.
    pub const INTERRUPTED_DUE_TO_REPL_STATE_CHANGE: i32 = 11602;
    /// Duplicate key (index build).
    pub const DUPLICATE_KEY_INDEX_BUILD: i32 = 12582;
    /// Stale config (resumable change-stream code on old servers).
    pub const STALE_CONFIG: i32 = 13388;
    /// The node is not primary and `secondaryOk` was not set.
    pub const NOT_PRIMARY_NO_SECONDARY_OK: i32 = 13435;
    /// The node is neither primary nor secondary (recovering, startup…).
    pub const NOT_PRIMARY_OR_SECONDARY: i32 = 13436;
    /// The document is larger than the server accepts.
    pub const BSON_OBJECT_TOO_LARGE: i32 = 10334;
    /// The node is not a writable primary.
    pub const NOT_WRITABLE_PRIMARY: i32 = 10107;
    /// Legacy "not master" code.
    pub const LEGACY_NOT_PRIMARY: i32 = 10058;
    /// A transport-level socket error.
    pub const SOCKET_EXCEPTION: i32 = 9001;
    /// An index key is too large.
    pub const KEY_TOO_LONG: i32 = 17280;
}

/// Error labels, as servers and drivers attach them.
pub mod labels {
    pub use mongodb::error::{
        NO_WRITES_PERFORMED, RESUMABLE_CHANGE_STREAM_ERROR, RETRYABLE_ERROR, RETRYABLE_WRITE_ERROR,
        SYSTEM_OVERLOADED_ERROR, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT,
    };
}

use codes::*;

/// Codes that make a read retryable.
///
/// Source: Retryable Reads specification, "Determining Retryable Errors" (the same list the
/// driver uses).
pub const RETRYABLE_READ_CODES: [i32; 13] = [
    EXCEEDED_TIME_LIMIT,
    INTERRUPTED_AT_SHUTDOWN,
    INTERRUPTED_DUE_TO_REPL_STATE_CHANGE,
    NOT_WRITABLE_PRIMARY,
    NOT_PRIMARY_NO_SECONDARY_OK,
    NOT_PRIMARY_OR_SECONDARY,
    PRIMARY_STEPPED_DOWN,
    READ_CONCERN_MAJORITY_NOT_AVAILABLE_YET,
    SHUTDOWN_IN_PROGRESS,
    HOST_NOT_FOUND,
    HOST_UNREACHABLE,
    NETWORK_TIMEOUT,
    SOCKET_EXCEPTION,
];

/// Codes that mean "this node is not a writable primary": the server refused the operation
/// before doing anything, so even a non-idempotent write was provably not applied.
///
/// Source: Server Discovery and Monitoring specification, "not writable primary" errors.
pub const NOT_WRITABLE_PRIMARY_CODES: [i32; 3] = [
    NOT_WRITABLE_PRIMARY,
    NOT_PRIMARY_NO_SECONDARY_OK,
    LEGACY_NOT_PRIMARY,
];

/// Codes that mean "this node is recovering" (including shutting down).
///
/// Source: Server Discovery and Monitoring specification, "node is recovering" errors.
pub const NODE_IS_RECOVERING_CODES: [i32; 5] = [
    INTERRUPTED_AT_SHUTDOWN,
    INTERRUPTED_DUE_TO_REPL_STATE_CHANGE,
    NOT_PRIMARY_OR_SECONDARY,
    PRIMARY_STEPPED_DOWN,
    SHUTDOWN_IN_PROGRESS,
];

/// Codes reported for network failures between servers (or by a proxy).
///
/// Source: Retryable Reads/Writes specifications (the network subset of the retryable codes).
pub const NETWORK_CODES: [i32; 4] = [
    HOST_NOT_FOUND,
    HOST_UNREACHABLE,
    NETWORK_TIMEOUT,
    SOCKET_EXCEPTION,
];

/// Codes that mean the server is shedding load.
///
/// Source: server `error_codes.yml` (`IngressRequestRateLimitExceeded`, `AdmissionQueueOverflow`)
/// and the client backpressure (`SystemOverloadedError`) specification.
pub const OVERLOADED_CODES: [i32; 2] = [
    INGRESS_REQUEST_RATE_LIMIT_EXCEEDED,
    ADMISSION_QUEUE_OVERFLOW,
];

/// Codes for server-side time limits.
///
/// Source: server `error_codes.yml`; 262 is also a retryable-read code.
pub const TIMEOUT_CODES: [i32; 2] = [MAX_TIME_MS_EXPIRED, EXCEEDED_TIME_LIMIT];

/// Codes for rejected credentials or missing privileges.
///
/// Source: server `error_codes.yml`; Authentication specification.
pub const AUTH_CODES: [i32; 4] = [
    AUTHENTICATION_FAILED,
    UNAUTHORIZED,
    USER_NOT_FOUND,
    REAUTHENTICATION_REQUIRED,
];

/// Codes that blame the request itself: fixing the input is the only cure.
///
/// Source: server `error_codes.yml`; CRUD specification (duplicate key codes).
pub const INVALID_INPUT_CODES: [i32; 12] = [
    BAD_VALUE,
    FAILED_TO_PARSE,
    TYPE_MISMATCH,
    INVALID_OPTIONS,
    NAMESPACE_NOT_FOUND,
    COMMAND_NOT_FOUND,
    DOCUMENT_VALIDATION_FAILURE,
    BSON_OBJECT_TOO_LARGE,
    KEY_TOO_LONG,
    DUPLICATE_KEY,
    DUPLICATE_KEY_ON_UPDATE,
    DUPLICATE_KEY_INDEX_BUILD,
];

/// Duplicate-key codes.
///
/// Source: CRUD specification and server `error_codes.yml`.
pub const DUPLICATE_KEY_CODES: [i32; 3] = [
    DUPLICATE_KEY,
    DUPLICATE_KEY_ON_UPDATE,
    DUPLICATE_KEY_INDEX_BUILD,
];

/// Write-concern codes: the write may have applied on the primary.
///
/// Source: server `error_codes.yml`; Retryable Writes specification ("writeConcernError").
pub const WRITE_CONCERN_CODES: [i32; 3] = [
    WRITE_CONCERN_FAILED,
    UNKNOWN_REPL_WRITE_CONCERN,
    UNSATISFIABLE_WRITE_CONCERN,
];

/// Cursor codes: the cursor is gone and the query must start again.
///
/// Source: server `error_codes.yml`.
pub const CURSOR_CODES: [i32; 3] = [CURSOR_NOT_FOUND, CURSOR_KILLED, QUERY_PLAN_KILLED];

/// Change-stream-specific codes.
///
/// Source: Change Streams specification, "Resumable Error" and server `error_codes.yml`.
pub const CHANGE_STREAM_CODES: [i32; 3] = [
    CHANGE_STREAM_FATAL_ERROR,
    CHANGE_STREAM_HISTORY_LOST,
    RETRY_CHANGE_STREAM,
];

/// Codes that make a change stream resumable on servers older than 4.4, which do not attach the
/// `ResumableChangeStreamError` label.
///
/// Source: Change Streams specification, "Resumable Error", pre-4.4 list.
pub const RESUMABLE_CHANGE_STREAM_CODES_PRE_44: [i32; 18] = [
    HOST_UNREACHABLE,
    HOST_NOT_FOUND,
    NETWORK_TIMEOUT,
    SHUTDOWN_IN_PROGRESS,
    PRIMARY_STEPPED_DOWN,
    EXCEEDED_TIME_LIMIT,
    SOCKET_EXCEPTION,
    NOT_WRITABLE_PRIMARY,
    INTERRUPTED_AT_SHUTDOWN,
    INTERRUPTED_DUE_TO_REPL_STATE_CHANGE,
    NOT_PRIMARY_NO_SECONDARY_OK,
    NOT_PRIMARY_OR_SECONDARY,
    STALE_SHARD_VERSION,
    STALE_EPOCH,
    STALE_CONFIG,
    RETRY_CHANGE_STREAM,
    FAILED_TO_SATISFY_READ_PREFERENCE,
    CURSOR_NOT_FOUND,
];
