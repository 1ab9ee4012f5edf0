//! Why the health gate refused a request.

use std::time::Duration;

/// The health gate refused the request; nothing was sent to the database.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// Health is `Unhealthy` and the gate fails fast.
    #[error("the database is unhealthy; try again in {retry_after:?}")]
    Unhealthy {
        /// When health will next be checked.
        retry_after: Duration,
    },
    /// Health is `Unhealthy` and the hold queue is full.
    #[error("the database is unhealthy and {waiting} requests already wait for it")]
    QueueFull {
        /// The queue's size.
        waiting: usize,
        /// When health will next be checked.
        retry_after: Duration,
    },
    /// Health stayed `Unhealthy` for the whole hold time.
    #[error("the database stayed unhealthy for {waited:?}")]
    HoldTimeout {
        /// How long the request was held.
        waited: Duration,
    },
}

impl GateError {
    /// The label of `keel_health_gate_rejections_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            GateError::Unhealthy { .. } => "unhealthy",
            GateError::QueueFull { .. } => "queue_full",
            GateError::HoldTimeout { .. } => "hold_timeout",
        }
    }
}

/// Fail-fast refusals become `Error::circuit_open` (class `Unavailable`: refused without
/// trying, never retried, not counted by breakers); a hold that timed out becomes
/// `Error::unreachable` (class `ServerSelection`: nothing was sent).
impl From<GateError> for keel_core::Error {
    fn from(err: GateError) -> Self {
        match err {
            GateError::Unhealthy { retry_after } | GateError::QueueFull { retry_after, .. } => {
                keel_core::Error::circuit_open(retry_after)
            }
            GateError::HoldTimeout { waited } => keel_core::Error::unreachable(waited),
        }
    }
}
