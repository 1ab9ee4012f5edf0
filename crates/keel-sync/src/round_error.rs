//! Why a sync round failed: the server (a `keel_core::Error`, classed by keel-core) or the
//! local store (a `SyncError`: the disk, not the network or the server). Both are retried after
//! keel-retry's backoff; only the server can refuse an operation for good (quarantine).

use keel_core::ErrorClass;

use crate::SyncError;

/// A failed upload or download step.
#[derive(Debug)]
pub(crate) enum RoundError {
    /// The server or the way to it.
    Server(keel_core::Error),
    /// The local store could not record what the round must record before going on (a
    /// conflict decision before its write is sent).
    LocalStore(SyncError),
}

impl RoundError {
    /// The class named in logs and in `keel_sync_upload_failures_total{class}`: keel-core's
    /// for server errors, `local_store` for the store (keel-core has no class for a local
    /// disk; `overloaded` would send an operator looking at the server).
    pub(crate) fn class(&self) -> &'static str {
        match self {
            Self::Server(error) => error.class().as_str(),
            Self::LocalStore(_) => "local_store",
        }
    }

    /// The server's error when it refused the operation for good (invalid input, permission,
    /// configuration): the operation is quarantined instead of retried.
    pub(crate) fn permanent(&self) -> Option<&keel_core::Error> {
        match self {
            Self::Server(error) if Self::permanent_server(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the server refused for good (see [`permanent`](Self::permanent)).
    pub(crate) fn permanent_server(error: &keel_core::Error) -> bool {
        matches!(
            error.class(),
            ErrorClass::InvalidInput | ErrorClass::Auth | ErrorClass::Config
        )
    }
}

impl From<keel_core::Error> for RoundError {
    fn from(error: keel_core::Error) -> Self {
        Self::Server(error)
    }
}

impl std::fmt::Display for RoundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server(error) => error.fmt(f),
            Self::LocalStore(error) => write!(
                f,
                "the local sync store could not record what the upload needs before sending it (a conflict decision or the transaction's session: {error}); the upload is tried again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_is_classed_local_store_and_never_quarantines() {
        let error = RoundError::LocalStore(SyncError::Storage("disk full".into()));
        assert_eq!(error.class(), "local_store");
        assert!(error.permanent().is_none());
        assert!(error.to_string().contains("disk full"), "{error}");
        let refused = RoundError::from(keel_core::Error::config("bad"));
        assert!(refused.permanent().is_some());
        assert_eq!(refused.class(), ErrorClass::Config.as_str());
    }
}
