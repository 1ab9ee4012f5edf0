//! Restore drills: a backup restored into a scratch target and compared with its manifest (a
//! drop-and-restore compares every namespace's count and digest), timed, and the result written
//! into the manifest (`last_drill`), so "is this backup restorable, and how long does it take"
//! is a recorded fact rather than a hope.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mongokeel::Keel;
use serde::{Deserialize, Serialize};

use crate::files::write_small;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::{BackupError, Restore};

/// The prefix of the scratch databases a drill restores into, so a drill pointed at a real
/// deployment never touches the backed-up databases themselves.
pub const DRILL_PREFIX: &str = "keel_drill_";

/// The outcome of the last drill, as the manifest records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrillRecord {
    /// When the drill finished (RFC 3339).
    pub at: String,
    /// Whether the restored data matched the manifest.
    pub ok: bool,
    /// How long the restore and comparison took, in seconds (the measured recovery time).
    pub seconds: f64,
    /// Documents restored.
    pub documents: u64,
    /// Changes replayed to the consistent point.
    pub changes: u64,
    /// What was restored into (a description without credentials).
    pub target: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A drill of the backup at a directory.
#[derive(Debug, Clone)]
pub struct RestoreDrill {
    dir: PathBuf,
    target: String,
}

impl RestoreDrill {
    /// A drill of the backup at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            target: "a scratch deployment".into(),
        }
    }

    /// How the target is described in the record (never put credentials here).
    pub fn target_description(mut self, description: impl Into<String>) -> Self {
        self.target = description.into();
        self
    }

    /// Restores every database `db` as `keel_drill_<db>` into the deployment behind `keel`
    /// (verifying the files first and comparing each namespace with the manifest), drops the
    /// scratch databases, and records the result in the manifest. A failed drill is recorded too
    /// and returned as the error.
    pub async fn run(self, keel: &Keel) -> Result<DrillRecord, BackupError> {
        let manifest = Manifest::read(&self.dir)?;
        let mut databases: Vec<&str> = manifest.namespaces.iter().map(|n| n.db.as_str()).collect();
        databases.sort_unstable();
        databases.dedup();
        let mut restore = Restore::from(&self.dir).drop(true);
        for db in &databases {
            restore = restore.rename(*db, format!("{DRILL_PREFIX}{db}"));
        }
        let started = Instant::now();
        let result = restore.into(keel).await;
        let seconds = started.elapsed().as_secs_f64();
        for db in &databases {
            let name = format!("{DRILL_PREFIX}{db}");
            let _ = keel.client().current().database(&name).drop().await;
        }
        let record = match &result {
            Ok(report) => DrillRecord {
                at: crate::backup::now(),
                ok: true,
                seconds,
                documents: report.documents,
                changes: report.changes,
                target: self.target.clone(),
                error: None,
            },
            Err(e) => DrillRecord {
                at: crate::backup::now(),
                ok: false,
                seconds,
                documents: 0,
                changes: 0,
                target: self.target.clone(),
                error: Some(e.to_string()),
            },
        };
        record_drill(&self.dir, &record)?;
        tracing::info!(dir = %self.dir.display(), ok = record.ok, seconds, "restore drill");
        result.map(|_| record)
    }
}

/// Rewrites the manifest with `last_drill` (and `last_good_drill` when it passed), through a
/// temporary file and a rename so a crash never leaves a torn manifest.
fn record_drill(dir: &Path, record: &DrillRecord) -> Result<(), BackupError> {
    let mut manifest = Manifest::read(dir)?;
    manifest.last_drill = Some(record.clone());
    if record.ok {
        manifest.last_good_drill = Some(record.at.clone());
    }
    let path = dir.join(MANIFEST_FILE);
    let temp = dir.join(format!(".{MANIFEST_FILE}.drill"));
    let _ = std::fs::remove_file(&temp);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| BackupError::BadFile {
        path: path.clone(),
        what: "manifest",
        message: e.to_string(),
    })?;
    write_small(&temp, text.as_bytes())?;
    std::fs::rename(&temp, &path).map_err(|e| BackupError::io("replacing", &path, e))
}
