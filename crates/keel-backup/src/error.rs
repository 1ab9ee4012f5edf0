//! The one error type of backups, verification and restores: each variant a sentence.

use std::path::PathBuf;

/// What went wrong in a backup, a verification or a restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A builder was used without a destination or source.
    #[error("no backup directory was given: call `.to(dir)` before `.run()`")]
    NoDestination,
    /// The destination already holds something.
    #[error("the backup directory {0} already exists: choose a new directory for each backup")]
    DestinationExists(PathBuf),
    /// An include or exclude pattern is not `db`, `db.*` or `db.coll`.
    #[error("the namespace pattern {0:?} is not valid: use `db`, `db.*` or `db.collection`")]
    BadPattern(String),
    /// Reading or writing a file failed.
    #[error("{action} {path} failed: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database refused or failed an operation (the message is the driver's, redacted).
    #[error("{0}")]
    Database(#[from] keel_core::Error),
    /// A cursor could not be resumed before the outage deadline.
    #[error(
        "reading {namespace} failed and did not recover within {seconds} s (last error: {message}); the backup was abandoned and nothing was left that looks finished"
    )]
    OutageDeadline {
        /// The namespace being read.
        namespace: String,
        /// The outage deadline.
        seconds: u64,
        /// The last error, redacted.
        message: String,
    },
    /// The change history the consistent point needs fell off the oplog during the dump.
    #[error(
        "the changes since the backup started (cluster time {}:{}) were lost from the oplog before the dump finished (ChangeStreamHistoryLost, 286: {message}); the backup cannot be made consistent and was abandoned: enlarge the oplog (replSetResizeOplog) or back up when fewer writes happen, then run it again", from.0, from.1
    )]
    ChangeHistoryLost {
        /// The cluster time the capture started at.
        from: (u32, u32),
        /// The server's message, redacted.
        message: String,
    },
    /// Collections or indexes changed during the dump on a server whose change streams cannot
    /// report DDL (before MongoDB 6.0), so the restore could not replay them.
    #[error(
        "{what} during the dump, and this server (MongoDB {version}) cannot report such changes in its change streams (that needs MongoDB 6.0 or later), so the backup could not be made consistent and was abandoned: run it again while no collections or indexes are being changed, or upgrade the server"
    )]
    DdlNotCaptured {
        /// What changed, as a phrase ("app.orders was renamed or dropped").
        what: String,
        /// The server's version.
        version: String,
    },
    /// Every listing after a dump round found new collections to dump.
    #[error(
        "collections kept being created or renamed during the dump ({rounds} listings in a row found new ones to dump); the backup was abandoned: run it again when fewer collections are being created"
    )]
    NamespacesKeptChanging {
        /// How many listings found new collections.
        rounds: usize,
    },
    /// The change stream that captures the changes during the dump failed.
    #[error(
        "capturing the changes made during the dump failed ({0}); the backup was abandoned and nothing was left that looks finished"
    )]
    ChangeCapture(String),
    /// Another scheduler holds the root directory.
    #[error(
        "another backup scheduler (process {pid}) already runs in {root}; stop it, or give this one another directory"
    )]
    ScheduleLocked {
        /// The root directory.
        root: PathBuf,
        /// The holder's process id.
        pid: String,
    },
    /// A schedule's cron expression does not parse or never matches.
    #[error(
        "the cron expression {expression:?} is not valid ({reason}); give five fields, minute hour day-of-month month day-of-week, such as \"0 */6 * * *\" (every 6 hours, UTC)"
    )]
    BadCron {
        /// The expression as given.
        expression: String,
        /// Why it is refused.
        reason: String,
    },
    /// An object store refused or failed an operation.
    #[error("the object store failed: {0}")]
    Remote(String),
    /// A manifest or metadata file could not be parsed.
    #[error("{path} is not a valid {what}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What it should be.
        what: &'static str,
        /// Why it is not.
        message: String,
    },
    /// `verify` found problems; the first few are listed.
    #[error("the backup at {dir} is not intact: {} problem(s), first: {}", problems.len(), problems.first().map(String::as_str).unwrap_or("none"))]
    NotIntact {
        /// The backup.
        dir: PathBuf,
        /// Every problem found, one sentence each.
        problems: Vec<String>,
    },
    /// A restore wrote fewer documents than the backup holds, or its result differs.
    #[error("the restore of {namespace} failed: {message}")]
    RestoreFailed {
        /// The target namespace.
        namespace: String,
        /// Counts and first failures.
        message: String,
    },
}

impl BackupError {
    /// What kind of failure this is, as a phrase without paths, server messages or data (for
    /// health reports and alerts).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoDestination | Self::BadPattern(_) | Self::BadCron { .. } => {
                "the backup is configured wrongly"
            }
            Self::DestinationExists(_) => "the backup directory already existed",
            Self::Io { .. } => "reading or writing a backup file failed",
            Self::Database(_) => "the database refused or failed an operation",
            Self::OutageDeadline { .. } => {
                "the database stayed unreachable past the outage deadline"
            }
            Self::ChangeHistoryLost { .. } => {
                "the changes made during the dump were lost from the oplog (286)"
            }
            Self::ChangeCapture(_) => "capturing the changes made during the dump failed",
            Self::DdlNotCaptured { .. } => {
                "collections or indexes changed during the dump on a server before MongoDB 6.0"
            }
            Self::NamespacesKeptChanging { .. } => {
                "collections kept being created or renamed during the dump"
            }
            Self::ScheduleLocked { .. } => "another scheduler holds the backup directory",
            Self::Remote(_) => "the object store failed",
            Self::BadFile { .. } => "a backup file could not be parsed",
            Self::NotIntact { .. } => "the backup is not intact",
            Self::RestoreFailed { .. } => "a restore failed",
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// A driver error in Keel's vocabulary (classified, credentials redacted).
pub(crate) fn driver(error: mongodb::error::Error) -> BackupError {
    BackupError::Database(keel_core::Error::from(error))
}

/// The server's error code of a refused command.
pub(crate) fn command_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}
