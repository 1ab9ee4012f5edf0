//! The request that travels down a Keel stack: a named, kinded, cloneable database call.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::OperationName;

/// The future an [`Operation`] returns when run against a client.
pub type OperationFuture<T> = BoxFuture<'static, mongodb::error::Result<T>>;

type RunFn<T> = dyn Fn(mongodb::Client) -> OperationFuture<T> + Send + Sync;

/// What an operation does to the database, which decides whether running it again is safe.
///
/// Keel's retry layer re-runs the closure, which is a *new* operation for the server (not the
/// driver's same-`txnNumber` retry). So only the caller can say whether a repeat is harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// Reads no state it changes: always safe to run again.
    Read,
    /// Changes data.
    Write {
        /// `true` when running the write twice leaves the same state as running it once
        /// (an upsert by `_id`, a `$set` to a fixed value, an insert with a client-chosen `_id`
        /// where a duplicate-key reply on a retry means "already done").
        idempotent: bool,
    },
    /// An administrative or database command (`ping`, `createIndexes`, `renameCollection`…).
    Command {
        /// `true` when running the command twice is harmless (`ping`, `listCollections`,
        /// `createIndexes` with the same spec); `false` for commands such as `renameCollection`.
        idempotent: bool,
    },
}

impl OperationKind {
    /// Whether running this operation again after an ambiguous failure is harmless.
    pub fn is_idempotent(self) -> bool {
        match self {
            OperationKind::Read => true,
            OperationKind::Write { idempotent } | OperationKind::Command { idempotent } => {
                idempotent
            }
        }
    }

    /// A short stable name, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Read => "read",
            OperationKind::Write { idempotent: true } => "write_idempotent",
            OperationKind::Write { idempotent: false } => "write",
            OperationKind::Command { idempotent: true } => "command_idempotent",
            OperationKind::Command { idempotent: false } => "command",
        }
    }
}

/// One database call: a name, a kind, an optional deadline and a closure over the driver client.
///
/// Cloning is cheap (the closure is shared), which is what lets a retry layer run it again.
/// The name is used in logs and as a metric label, so it must come from a small fixed set
/// (`"users.find_one"`), never from user data.
pub struct Operation<T> {
    name: OperationName,
    kind: OperationKind,
    deadline: Option<Instant>,
    run: Arc<RunFn<T>>,
}

impl<T> Clone for Operation<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            kind: self.kind,
            deadline: self.deadline,
            run: Arc::clone(&self.run),
        }
    }
}

impl<T> fmt::Debug for Operation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Operation<T> {
    /// An operation of any kind from a closure that returns a future.
    ///
    /// ```
    /// use keel_core::{Operation, OperationKind};
    /// let ping = Operation::new("admin.ping", OperationKind::Command { idempotent: true },
    ///     |client: mongodb::Client| async move {
    ///         client.database("admin").run_command(mongodb::bson::doc! { "ping": 1 }).await
    ///     });
    /// assert_eq!(ping.name(), "admin.ping");
    /// ```
    pub fn new<F, Fut>(name: impl Into<OperationName>, kind: OperationKind, run: F) -> Self
    where
        F: Fn(mongodb::Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = mongodb::error::Result<T>> + Send + 'static,
    {
        Self {
            name: name.into(),
            kind,
            deadline: None,
            run: Arc::new(move |client| Box::pin(run(client))),
        }
    }

    /// A read ([`OperationKind::Read`]).
    pub fn read<F, Fut>(name: impl Into<OperationName>, run: F) -> Self
    where
        F: Fn(mongodb::Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = mongodb::error::Result<T>> + Send + 'static,
    {
        Self::new(name, OperationKind::Read, run)
    }

    /// A write ([`OperationKind::Write`]); say whether repeating it is harmless.
    pub fn write<F, Fut>(name: impl Into<OperationName>, idempotent: bool, run: F) -> Self
    where
        F: Fn(mongodb::Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = mongodb::error::Result<T>> + Send + 'static,
    {
        Self::new(name, OperationKind::Write { idempotent }, run)
    }

    /// A command ([`OperationKind::Command`]); say whether repeating it is harmless.
    pub fn command<F, Fut>(name: impl Into<OperationName>, idempotent: bool, run: F) -> Self
    where
        F: Fn(mongodb::Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = mongodb::error::Result<T>> + Send + 'static,
    {
        Self::new(name, OperationKind::Command { idempotent }, run)
    }
}

impl<T> Operation<T> {
    /// Sets the instant after which no attempt of this operation may start or continue.
    ///
    /// A [`tokio::time::Instant`], so tests can drive deadlines with paused time.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the deadline to `timeout` from now.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        let deadline = Instant::now() + timeout;
        self.with_deadline(deadline)
    }

    /// The operation's name, for logs and metric labels.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The name as an [`OperationName`], whose clone shares the string: for a metric label or
    /// an error that outlives the operation.
    ///
    /// ```
    /// use keel_core::Operation;
    /// let op = Operation::read("app.users.find_one", |_c: mongodb::Client| async { Ok(1) });
    /// let label = op.label().clone();
    /// drop(op);
    /// assert_eq!(label.as_str(), "app.users.find_one");
    /// ```
    pub fn label(&self) -> &OperationName {
        &self.name
    }

    /// What the operation does, which decides whether it may be retried.
    pub fn kind(&self) -> OperationKind {
        self.kind
    }

    /// The instant after which the caller no longer wants an answer, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`Some(ZERO)` once it has passed), or `None` without one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Starts one attempt of the operation against `client`.
    pub fn call(&self, client: mongodb::Client) -> OperationFuture<T> {
        (self.run)(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(kind: OperationKind) -> Operation<u32> {
        Operation::new("test.noop", kind, |_client| async { Ok(7) })
    }

    #[test]
    fn idempotence_follows_the_kind() {
        assert!(OperationKind::Read.is_idempotent());
        assert!(OperationKind::Write { idempotent: true }.is_idempotent());
        assert!(!OperationKind::Write { idempotent: false }.is_idempotent());
        assert!(OperationKind::Command { idempotent: true }.is_idempotent());
        assert!(!OperationKind::Command { idempotent: false }.is_idempotent());
    }

    #[test]
    fn clones_share_name_kind_and_deadline() {
        let op = noop(OperationKind::Write { idempotent: true });
        let copy = op.clone();
        assert_eq!(copy.name(), "test.noop");
        assert_eq!(copy.kind(), op.kind());
        assert_eq!(copy.deadline(), None);
        assert!(format!("{copy:?}").contains("test.noop"));
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_to_zero() {
        let op = noop(OperationKind::Read).with_timeout(Duration::from_secs(2));
        assert_eq!(op.remaining(), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(op.remaining(), Some(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(op.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn kind_names_are_distinct() {
        let names = [
            OperationKind::Read,
            OperationKind::Write { idempotent: true },
            OperationKind::Write { idempotent: false },
            OperationKind::Command { idempotent: true },
            OperationKind::Command { idempotent: false },
        ]
        .map(OperationKind::as_str);
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }
}
