//! Backup and restore on the [`mongokeel::Keel`] handle, in mongodump's directory layout, with a
//! manifest of SHA-256 digests that [`verify`] checks at rest.
//!
//! ```no_run
//! # async fn example(keel: mongokeel::Keel) -> Result<(), keel_backup::BackupError> {
//! let manifest = keel_backup::Backup::builder(keel.clone())
//!     .include(["app.*"])
//!     .to("/var/backups/app-2026-12-01")
//!     .gzip(true)
//!     .run()
//!     .await?;
//! keel_backup::verify("/var/backups/app-2026-12-01")?;
//! keel_backup::Restore::from("/var/backups/app-2026-12-01").drop(true).into(&keel).await?;
//! # Ok(()) }
//! ```

mod archive;
mod backup;
mod cadence;
mod changes;
mod ddl;
mod digest;
mod drill;
mod error;
mod files;
mod manifest;
mod metadata;
mod namespace;
mod progress;
#[cfg(feature = "object-store")]
pub mod remote;
mod restore;
mod resume;
mod retention;
#[cfg(feature = "s3")]
pub mod s3;
mod schedule;
pub mod schedule_report;
mod transient;
mod verify;
mod writer;

pub use archive::{read_archive, write_archive, write_archive_with};
pub use backup::{Backup, BackupBuilder};
pub use cadence::{Cadence, CronExpression};
pub use changes::{CHANGES_FILE, ChangesEntry};
pub use digest::DocumentsDigest;
pub use drill::{DRILL_PREFIX, DrillRecord, RestoreDrill};
pub use error::BackupError;
pub use manifest::{MANIFEST_FILE, Manifest, NamespaceEntry};
pub use metadata::{CollectionMetadata, PRELUDE_FILE, Prelude};
pub use namespace::{NamespaceFilter, file_stem};
pub use progress::Progress;
pub use restore::{Restore, RestoreReport};
pub use retention::{BackupInfo, Retention, list_backups};
pub use schedule::{SCHEDULE_LOCK, Schedule, ScheduleStats};
pub use verify::{VerifyReport, verify};

/// This crate's version, recorded in `prelude.json` and `manifest.json`.
pub const TOOL_VERSION: &str = concat!("keel-backup ", env!("CARGO_PKG_VERSION"));
