//! The retry-safety table: which classes of failure may be retried for which kinds of operation.
//!
//! A Keel retry re-runs the operation's closure, which the server sees as a *new* operation
//! (not the driver's same-`txnNumber` retry). Hence (design notes §4):
//! * reads and idempotent writes/commands retry on transient classes;
//! * other writes and commands retry only when the failure proves nothing was applied;
//! * auth, config, invalid input, write concern, cursor, change stream, unavailable and unknown
//!   failures are never retried by Keel.

use super::ErrorClass;
use crate::OperationKind;

/// Classes a retry can cure: the failure is transient and says nothing against the request.
///
/// Sources: Retryable Reads and Retryable Writes specifications ("retryable error": network
/// errors, the state-change codes, pool cleared and server selection before sending) and the
/// client backpressure specification (`SystemOverloadedError`).
fn is_transient(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Network
            | ErrorClass::StateChange
            | ErrorClass::PoolCleared
            | ErrorClass::ServerSelection
            | ErrorClass::Overloaded
            | ErrorClass::Timeout
    )
}

/// Whether an operation of `kind` that failed with `class` may safely be run again.
///
/// | class | read / idempotent | non-idempotent write or command |
/// |---|---|---|
/// | network, state change, timeout | yes | only if the failure proves nothing applied |
/// | pool cleared, server selection, overloaded | yes | only if it proves nothing applied (these usually do) |
/// | auth, config, invalid input, write concern, cursor, change stream, unavailable, unknown | no | no |
pub fn is_retry_safe(class: ErrorClass, kind: OperationKind, proves_not_applied: bool) -> bool {
    is_transient(class) && (kind.is_idempotent() || proves_not_applied)
}
