//! `keel backup --out s3://bucket/prefix` and `keel restore --from s3://bucket/prefix` (feature
//! `s3`): the backup is written and verified in a private staging directory, then uploaded
//! (manifest last) and the staging directory removed; a restore downloads and verifies first.
//! Credentials come only from the `AWS_*` environment (keel_backup::s3) and are never printed.

use std::path::{Path, PathBuf};

/// Whether a `--out`/`--from` value is an `s3://` URL.
pub(crate) fn is_s3(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with("s3://"))
}

/// A private directory for one backup or restore, removed on drop.
pub(crate) struct Staging(PathBuf);

impl Staging {
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "keel-{what}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        Self(dir)
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a backup to S3 goes once it is written and verified locally.
pub(crate) struct Upload {
    #[cfg(feature = "s3")]
    location: keel_backup::s3::S3Location,
    staging: Staging,
}

#[cfg(not(feature = "s3"))]
const NO_S3: &str = "this keel was built without S3 support: build it with the `s3` feature (cargo install keel-cli --features s3), or back up to a directory and copy it";

impl Upload {
    /// For `--out s3://bucket/prefix`: the location (which must hold nothing yet) and a staging
    /// directory.
    pub(crate) async fn prepare(out: &Path) -> Result<Self, String> {
        #[cfg(feature = "s3")]
        {
            let url = out.to_string_lossy();
            let location = keel_backup::s3::open(&url).map_err(|e| format!("{e}."))?;
            let empty = keel_backup::s3::prefix_is_empty(location.store.as_ref(), &location.prefix)
                .await
                .map_err(|e| format!("{e}."))?;
            if !empty {
                return Err(format!(
                    "{location} already holds objects: choose a new prefix for each backup."
                ));
            }
            Ok(Self {
                location,
                staging: Staging::new("backup"),
            })
        }
        #[cfg(not(feature = "s3"))]
        {
            let _ = out;
            Err(format!("{NO_S3}."))
        }
    }

    /// The local directory to write the backup to.
    pub(crate) fn staging(&self) -> &Path {
        self.staging.path()
    }

    /// Uploads the verified backup, manifest last; returns a line to print.
    pub(crate) async fn finish(self) -> Result<String, String> {
        #[cfg(feature = "s3")]
        {
            let files = keel_backup::remote::upload(
                self.staging.path(),
                self.location.store.as_ref(),
                &self.location.prefix,
            )
            .await
            .map_err(|e| format!("{e}."))?;
            Ok(format!(
                "uploaded to {} ({files} objects, the manifest last).",
                self.location
            ))
        }
        #[cfg(not(feature = "s3"))]
        {
            Err(format!("{NO_S3}."))
        }
    }
}

/// For `--from s3://bucket/prefix`: the backup downloaded into a staging directory and verified.
pub(crate) async fn download(from: &Path) -> Result<Staging, String> {
    #[cfg(feature = "s3")]
    {
        let url = from.to_string_lossy();
        let location = keel_backup::s3::open(&url).map_err(|e| format!("{e}."))?;
        let staging = Staging::new("restore");
        keel_backup::remote::download(location.store.as_ref(), &location.prefix, staging.path())
            .await
            .map_err(|e| format!("{e}."))?;
        Ok(staging)
    }
    #[cfg(not(feature = "s3"))]
    {
        let _ = from;
        Err(format!("{NO_S3}."))
    }
}
