//! A restore's per-namespace progress, kept in the target (`keel_restore.progress`) so that a
//! restore killed mid-way and run again continues where it stopped, without duplicates: one
//! document per target namespace holds how many documents are surely written, how many were
//! in flight (written again by upsert on resume) and whether the namespace is done and verified.
//! A finished restore deletes its records, so the next run of the same backup starts afresh.

use std::future::IntoFuture as _;
use std::path::Path;
use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongokeel::Keel;

use crate::BackupError;
use crate::files::hash_file;
use crate::manifest::MANIFEST_FILE;
use crate::restore::PROGRESS_DB;
use crate::transient::retry;

/// The collection holding the records.
const PROGRESS_COLLECTION: &str = "progress";

/// Where an interrupted restore of one namespace stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Documents written for sure (in file order).
    pub(crate) documents: u64,
    /// Documents after those that were being written when the run stopped.
    pub(crate) in_flight: u64,
    /// The namespace's data is complete and was compared with the manifest.
    pub(crate) verified: bool,
}

/// The progress records of one restore: one backup (by its manifest's SHA-256) in one mode.
pub(crate) struct ProgressStore {
    collection: mongodb::Collection<Document>,
    restore: String,
    /// How long a transient failure of a record's read or write is tried again.
    deadline: Duration,
}

impl ProgressStore {
    pub(crate) fn new(
        keel: &Keel,
        backup: &Path,
        drop: bool,
        deadline: Duration,
    ) -> Result<Self, BackupError> {
        let manifest = hash_file(&backup.join(MANIFEST_FILE))?;
        let mode = if drop { "drop" } else { "merge" };
        Ok(Self {
            collection: keel
                .client()
                .current()
                .database(PROGRESS_DB)
                .collection(PROGRESS_COLLECTION),
            restore: format!("{} {mode}", &manifest.sha256[..32]),
            deadline,
        })
    }

    fn key(&self, ns: &str) -> Document {
        doc! {"_id": {"restore": &self.restore, "ns": ns}}
    }

    pub(crate) async fn load(&self, ns: &str) -> Result<Option<Checkpoint>, BackupError> {
        let found = retry(self.deadline, "reading the restore's progress", || {
            self.collection.find_one(self.key(ns)).into_future()
        })
        .await
        .map_err(crate::error::driver)?;
        Ok(found.map(|d| Checkpoint {
            documents: d.get_i64("documents").unwrap_or(0).max(0) as u64,
            in_flight: d.get_i64("inFlight").unwrap_or(0).max(0) as u64,
            verified: d.get_bool("verified").unwrap_or(false),
        }))
    }

    pub(crate) async fn save(
        &self,
        ns: &str,
        documents: u64,
        in_flight: u64,
        verified: bool,
    ) -> Result<(), BackupError> {
        let update = doc! {"$set": {
            "documents": documents as i64,
            "inFlight": in_flight as i64,
            "verified": verified,
            "at": mongodb::bson::DateTime::now(),
        }};
        retry(self.deadline, "recording the restore's progress", || {
            self.collection
                .update_one(self.key(ns), update.clone())
                .upsert(true)
                .into_future()
        })
        .await
        .map_err(crate::error::driver)?;
        Ok(())
    }

    /// The restore finished: its records go.
    pub(crate) async fn finish(&self) -> Result<(), BackupError> {
        retry(self.deadline, "deleting the restore's progress", || {
            self.collection
                .delete_many(doc! {"_id.restore": &self.restore})
                .into_future()
        })
        .await
        .map_err(crate::error::driver)?;
        Ok(())
    }
}
