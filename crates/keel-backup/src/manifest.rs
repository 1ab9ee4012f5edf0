//! Keel's `manifest.json`: what a backup holds and the digests that prove it intact. mongorestore
//! ignores the file. It is written last, with `complete: true`; a backup without it is
//! incomplete and never listed as usable.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::BackupError;

/// The name of the manifest file at the backup's root.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One namespace in a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamespaceEntry {
    /// The database.
    pub db: String,
    /// The full collection name.
    pub collection: String,
    /// `collection`, `view` or `timeseries`.
    #[serde(rename = "type")]
    pub collection_type: String,
    /// The documents file relative to the backup root (`None` for a view).
    pub bson_file: Option<String>,
    /// The metadata file relative to the backup root.
    pub metadata_file: String,
    /// How many documents were written.
    pub count: u64,
    /// The uncompressed size of the documents.
    pub bytes: u64,
    /// SHA-256 of the documents file as written (compressed, if gzip).
    pub bson_sha256: Option<String>,
    /// SHA-256 of the metadata file.
    pub metadata_sha256: String,
    /// The order-independent digest of the documents ([`crate::DocumentsDigest`]).
    pub documents_digest: String,
    /// SHA-256 of the index specifications' canonical Extended JSON, in `listIndexes` order.
    pub indexes_digest: String,
}

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The manifest format's version.
    pub format: u32,
    /// The tool that wrote it ([`crate::TOOL_VERSION`]).
    pub tool_version: String,
    /// The server's version.
    pub server_version: String,
    /// When the backup started (RFC 3339).
    pub started_at: String,
    /// When the last file was written (RFC 3339).
    pub finished_at: String,
    /// The cluster time read before the first document, as `{t, i}`, when the server reports one.
    pub cluster_time: Option<(u32, u32)>,
    /// Whether documents files are gzip-compressed.
    pub gzip: bool,
    /// SHA-256 of `prelude.json`.
    pub prelude_sha256: String,
    /// Every namespace taken.
    pub namespaces: Vec<NamespaceEntry>,
    /// The changes captured during the dump (replica sets); `None` on a standalone, whose
    /// backup is consistent per document only.
    #[serde(default)]
    pub changes: Option<crate::changes::ChangesEntry>,
    /// Whether collection and index changes (DDL) made during the dump are in the captured
    /// changes (`showExpandedEvents`, MongoDB 6.0+), so a restore replays them. `false` on an
    /// older server: there the backup fails if the dump sees collections, options or indexes
    /// change, so a finished backup had none.
    #[serde(default)]
    pub ddl_captured: bool,
    /// Written last: `true` only once every other file is on disk.
    pub complete: bool,
    /// The last restore drill of this backup ([`crate::RestoreDrill`]), passed or failed.
    #[serde(default)]
    pub last_drill: Option<crate::drill::DrillRecord>,
    /// When a drill of this backup last passed (RFC 3339).
    #[serde(default)]
    pub last_good_drill: Option<String>,
}

impl Manifest {
    /// The manifest of the backup at `dir`.
    pub fn read(dir: &Path) -> Result<Self, BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let text =
            std::fs::read_to_string(&path).map_err(|e| BackupError::io("reading", &path, e))?;
        serde_json::from_str(&text).map_err(|e| BackupError::BadFile {
            path,
            what: "Keel backup manifest",
            message: e.to_string(),
        })
    }

    /// Total documents over every namespace.
    pub fn documents(&self) -> u64 {
        self.namespaces.iter().map(|n| n.count).sum()
    }
}
