//! Object-storage destinations (feature `object-store`): a finished, verified backup directory
//! uploaded to any `object_store` store (S3 and compatibles, GCS, Azure, local, in-memory) under
//! a prefix, and downloaded back into a directory that is verified before it is used. The
//! manifest goes up last, so an interrupted upload has no manifest and is never taken for a
//! backup; files stream in 5 MiB parts (bounded memory, never a whole file).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};

use crate::files::create_private;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::{BackupError, verify};

/// How many parts of one file may be in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

fn remote(error: object_store::Error) -> BackupError {
    BackupError::Remote(keel_core::redact::redact_text(&error.to_string()))
}

/// Every file under `dir`, relative, manifest last.
fn files(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let abs = dir.join(&rel);
        let entries = std::fs::read_dir(&abs).map_err(|e| BackupError::io("listing", &abs, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BackupError::io("listing", &abs, e))?;
            let path = rel.join(entry.file_name());
            if entry.path().is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort_by_key(|p| p == Path::new(MANIFEST_FILE));
    Ok(out)
}

fn object_path(prefix: &str, rel: &Path) -> ObjectPath {
    let rel = rel.to_string_lossy().replace('\\', "/");
    ObjectPath::from(format!("{}/{rel}", prefix.trim_end_matches('/')))
}

/// Verifies the backup at `dir`, then uploads every file under `prefix` (the manifest last).
/// Returns how many files went up.
pub async fn upload(
    dir: &Path,
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<usize, BackupError> {
    verify(dir)?;
    let files = files(dir)?;
    for rel in &files {
        let path = dir.join(rel);
        let mut file =
            std::fs::File::open(&path).map_err(|e| BackupError::io("opening", &path, e))?;
        let upload = store
            .put_multipart(&object_path(prefix, rel))
            .await
            .map_err(remote)?;
        let mut writer = WriteMultipart::new(upload);
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| BackupError::io("reading", &path, e))?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(remote)?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(remote)?;
    }
    tracing::info!(dir = %dir.display(), %prefix, files = files.len(), "backup uploaded");
    Ok(files.len())
}

/// Downloads the backup under `prefix` into the new directory `dir` (files mode 0600) and
/// verifies it; a prefix without a manifest is an incomplete upload and an error.
pub async fn download(
    store: &dyn ObjectStore,
    prefix: &str,
    dir: &Path,
) -> Result<Manifest, BackupError> {
    if dir.exists() {
        return Err(BackupError::DestinationExists(dir.to_owned()));
    }
    let base = ObjectPath::from(prefix.trim_end_matches('/'));
    let objects: Vec<_> = store
        .list(Some(&base))
        .try_collect()
        .await
        .map_err(remote)?;
    let manifest_path = object_path(prefix, Path::new(MANIFEST_FILE));
    if !objects.iter().any(|o| o.location == manifest_path) {
        return Err(BackupError::Remote(format!(
            "{prefix} holds no {MANIFEST_FILE}: the upload is incomplete and not a usable backup"
        )));
    }
    let result = async {
        for object in &objects {
            let rel: Vec<String> = object
                .location
                .prefix_match(&base)
                .map(|parts| parts.map(|p| p.as_ref().to_owned()).collect())
                .unwrap_or_default();
            if rel.is_empty() || rel.iter().any(|p| p == ".." || p.is_empty()) {
                continue;
            }
            let path = rel.iter().fold(dir.to_owned(), |p, part| p.join(part));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| BackupError::io("creating the directory", parent, e))?;
            }
            let mut file = create_private(&path)?;
            let mut stream = store
                .get(&object.location)
                .await
                .map_err(remote)?
                .into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(remote)?;
                file.write_all(&chunk)
                    .map_err(|e| BackupError::io("writing", &path, e))?;
            }
            file.sync_all()
                .map_err(|e| BackupError::io("finishing", &path, e))?;
        }
        verify(dir)?;
        Manifest::read(dir)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}
