//! What kind of trouble an error is: its class, how severe it is, and what an end user may see.

use std::fmt;

/// The class of a failure: what went wrong, independent of where it was noticed.
///
/// Layers decide from the class alone (retry, trip the breaker, count as unhealthy), so a class
/// groups failures that deserve the same treatment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The connection failed or broke (I/O error, reset, DNS, network error codes).
    Network,
    /// The server is no longer (or not yet) a writable primary, or is recovering / shutting down.
    StateChange,
    /// The driver cleared the connection pool after another failure; nothing was sent.
    PoolCleared,
    /// No suitable server was found in time; nothing was sent.
    ServerSelection,
    /// The server or Keel itself is shedding load (`SystemOverloadedError`, checkout wait limit).
    Overloaded,
    /// A time limit elapsed (the attempt, the caller's deadline, or server `maxTimeMS`).
    Timeout,
    /// Credentials were rejected or the user lacks a privilege.
    Auth,
    /// The client is misconfigured (bad TLS set-up, invalid option).
    Config,
    /// The request itself is wrong: bad value, failed validation, duplicate key.
    InvalidInput,
    /// The write applied on the primary but its write concern was not satisfied.
    WriteConcern,
    /// The cursor is gone (`CursorNotFound`, killed) and the query must start again.
    Cursor,
    /// A change-stream-specific failure (history lost, fatal).
    ChangeStream,
    /// Keel refused the call without trying: the circuit is open, the client is shutting down, or
    /// no member of the deployment is reachable.
    Unavailable,
    /// Anything else. Treated conservatively: not retried.
    Unknown,
}

impl ErrorClass {
    /// Every class, for tables and exhaustive tests.
    pub const ALL: [ErrorClass; 14] = [
        ErrorClass::Network,
        ErrorClass::StateChange,
        ErrorClass::PoolCleared,
        ErrorClass::ServerSelection,
        ErrorClass::Overloaded,
        ErrorClass::Timeout,
        ErrorClass::Auth,
        ErrorClass::Config,
        ErrorClass::InvalidInput,
        ErrorClass::WriteConcern,
        ErrorClass::Cursor,
        ErrorClass::ChangeStream,
        ErrorClass::Unavailable,
        ErrorClass::Unknown,
    ];

    /// A short stable name, for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Network => "network",
            ErrorClass::StateChange => "state_change",
            ErrorClass::PoolCleared => "pool_cleared",
            ErrorClass::ServerSelection => "server_selection",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Auth => "auth",
            ErrorClass::Config => "config",
            ErrorClass::InvalidInput => "invalid_input",
            ErrorClass::WriteConcern => "write_concern",
            ErrorClass::Cursor => "cursor",
            ErrorClass::ChangeStream => "change_stream",
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::Unknown => "unknown",
        }
    }

    /// How severe a failure of this class is for the service running Keel.
    pub fn severity(self) -> Severity {
        match self {
            ErrorClass::InvalidInput => Severity::Caller,
            ErrorClass::Network
            | ErrorClass::StateChange
            | ErrorClass::PoolCleared
            | ErrorClass::Overloaded
            | ErrorClass::Timeout
            | ErrorClass::Cursor
            | ErrorClass::Unavailable => Severity::Transient,
            ErrorClass::ServerSelection
            | ErrorClass::WriteConcern
            | ErrorClass::ChangeStream
            | ErrorClass::Unknown => Severity::Degraded,
            ErrorClass::Auth | ErrorClass::Config => Severity::Fatal,
        }
    }

    /// Whether the failure says something about the database's health (as opposed to the
    /// caller's request). Circuit breakers and health checks count only these.
    pub fn is_infrastructure(self) -> bool {
        !matches!(
            self,
            ErrorClass::InvalidInput | ErrorClass::Cursor | ErrorClass::Unavailable
        )
    }

    /// Whether the failure means the database cannot be reached or used right now, whoever
    /// noticed it: the network ([`Network`](Self::Network)), a primary stepping down or a
    /// member recovering ([`StateChange`](Self::StateChange)), the pool cleared after such a
    /// failure ([`PoolCleared`](Self::PoolCleared)), no server selected or reachable in time
    /// ([`ServerSelection`](Self::ServerSelection), also Keel's `Unreachable` and the health
    /// gate's hold timeout), or Keel refusing without trying
    /// ([`Unavailable`](Self::Unavailable): circuit open, health gate, shutting down).
    ///
    /// This is the predicate for answering "unavailable, try again later" (HTTP 503 with
    /// `Retry-After`). It differs from [`is_infrastructure`](Self::is_infrastructure) on
    /// purpose: that one counts what the *database* did, so a breaker and a health check do
    /// not count Keel's own refusals (`Unavailable`) as new failures, which would keep the
    /// breaker open on its own refusals. A caller does not care who noticed: an open breaker
    /// means the database is unavailable. And `is_infrastructure` also holds for overload,
    /// timeouts, auth and configuration failures, which are not "unavailable".
    ///
    /// ```
    /// use keel_core::ErrorClass;
    /// assert!(ErrorClass::Unavailable.is_unavailable());
    /// assert!(!ErrorClass::Unavailable.is_infrastructure());
    /// assert!(!ErrorClass::Overloaded.is_unavailable());
    /// ```
    pub fn is_unavailable(self) -> bool {
        matches!(
            self,
            ErrorClass::Network
                | ErrorClass::StateChange
                | ErrorClass::PoolCleared
                | ErrorClass::ServerSelection
                | ErrorClass::Unavailable
        )
    }

    /// A message safe to show an end user: no host, no credential, no internal detail.
    ///
    /// [`Error::user_message`](crate::Error::user_message) is more precise where the error
    /// knows more than its class (a duplicate key).
    pub fn user_message(self) -> &'static str {
        match self {
            ErrorClass::Network
            | ErrorClass::StateChange
            | ErrorClass::PoolCleared
            | ErrorClass::ServerSelection
            | ErrorClass::Unavailable => {
                "The database is temporarily unavailable. Please try again shortly."
            }
            ErrorClass::Overloaded => "The service is busy. Please try again shortly.",
            ErrorClass::Timeout => "The request took too long. Please try again.",
            ErrorClass::Auth | ErrorClass::Config => {
                "The service cannot reach its database because of a configuration problem."
            }
            ErrorClass::InvalidInput => "The request was not valid.",
            ErrorClass::WriteConcern => {
                "The change was saved but could not be confirmed. Please check before retrying."
            }
            ErrorClass::Cursor | ErrorClass::ChangeStream => {
                "The request was interrupted. Please try again."
            }
            ErrorClass::Unknown => "An unexpected error occurred.",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a failure is for the service, ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The caller's request is wrong; the database is fine.
    Caller,
    /// Expected to pass on its own (a failover, a blip); retrying is the cure.
    Transient,
    /// The service is impaired and may stay so without intervention.
    Degraded,
    /// Needs a human: credentials or configuration are wrong; retrying cannot help.
    Fatal,
}

impl Severity {
    /// A short stable name, for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Caller => "caller",
            Severity::Transient => "transient",
            Severity::Degraded => "degraded",
            Severity::Fatal => "fatal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorClass;

    /// One row per class: whether the database is unavailable, and whether it counts as
    /// infrastructure (breaker, health).
    const UNAVAILABLE: [(ErrorClass, bool, bool); 14] = [
        (ErrorClass::Network, true, true),
        (ErrorClass::StateChange, true, true),
        (ErrorClass::PoolCleared, true, true),
        (ErrorClass::ServerSelection, true, true),
        (ErrorClass::Overloaded, false, true),
        (ErrorClass::Timeout, false, true),
        (ErrorClass::Auth, false, true),
        (ErrorClass::Config, false, true),
        (ErrorClass::InvalidInput, false, false),
        (ErrorClass::WriteConcern, false, true),
        (ErrorClass::Cursor, false, false),
        (ErrorClass::ChangeStream, false, true),
        // Keel's own refusals: unavailable to the caller, not infrastructure (the breaker counts
        // only the no-member-reachable one, by its kind).
        (ErrorClass::Unavailable, true, false),
        (ErrorClass::Unknown, false, true),
    ];

    #[test]
    fn every_class_is_unavailable_or_not_as_documented() {
        assert_eq!(
            UNAVAILABLE.map(|(class, _, _)| class),
            ErrorClass::ALL,
            "one row per class, in order"
        );
        for (class, unavailable, infrastructure) in UNAVAILABLE {
            assert_eq!(class.is_unavailable(), unavailable, "{class}");
            assert_eq!(class.is_infrastructure(), infrastructure, "{class}");
        }
    }
}
