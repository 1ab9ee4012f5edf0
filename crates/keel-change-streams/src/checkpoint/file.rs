//! `FileCheckpointStore`: one BSON file per consumer in a directory, replaced atomically.
//!
//! A commit writes `NAME.checkpoint.tmp`, fsyncs it, renames it over `NAME.checkpoint` and
//! fsyncs the directory: after a crash (even of the machine) the file holds either the old or
//! the new checkpoint, never a torn one (POSIX `rename` is atomic; the directory fsync makes the
//! rename itself durable). For one process: the compare-and-set is checked under an in-process
//! lock, not across processes.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::future::{BoxFuture, FutureExt};
use keel_core::Error;
use mongodb::bson::{Bson, Document, Timestamp, doc};
use tokio::sync::Mutex;

use super::{Checkpoint, CheckpointStore, CommitError, validate_name};

/// Checkpoints as files in one directory (created if missing).
#[derive(Clone, Debug)]
pub struct FileCheckpointStore {
    dir: Arc<PathBuf>,
    lock: Arc<Mutex<()>>,
}

impl FileCheckpointStore {
    /// A store in `dir`; the directory is created on the first commit.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Arc::new(dir.into()),
            lock: Arc::new(Mutex::new(())),
        }
    }

    fn path(&self, consumer: &str) -> Result<PathBuf, Error> {
        validate_name(consumer)?;
        Ok(self.dir.join(format!("{consumer}.checkpoint")))
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::config(format!(
        "cannot {what} checkpoint file {}: {e}",
        path.display()
    ))
}

fn read(path: &Path) -> Result<Option<Checkpoint>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", path, &e)),
    };
    let doc = Document::from_reader(bytes.as_slice()).map_err(|e| {
        Error::config(format!(
            "checkpoint file {} is not a checkpoint ({e}); restore it or remove it to start \
             from the configured start point",
            path.display()
        ))
    })?;
    let token = doc
        .get_document("token")
        .cloned()
        .map_err(|_| Error::config(format!("checkpoint file {} has no token", path.display())))?;
    let millis = doc.get_i64("committedAtMs").unwrap_or(0);
    Ok(Some(Checkpoint {
        token,
        version: u64::try_from(doc.get_i64("version").unwrap_or(0)).unwrap_or(0),
        cluster_time: doc.get_timestamp("clusterTime").ok(),
        committed_at: UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0)),
    }))
}

fn write_atomically(dir: &Path, path: &Path, checkpoint: &Checkpoint) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| io_error("create the directory of", path, &e))?;
    let millis = checkpoint
        .committed_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut doc = doc! {
        "token": checkpoint.token.clone(),
        "version": i64::try_from(checkpoint.version).unwrap_or(i64::MAX),
        "committedAtMs": millis,
    };
    if let Some(ts) = checkpoint.cluster_time {
        doc.insert("clusterTime", Bson::Timestamp(ts));
    }
    let mut bytes = Vec::new();
    doc.to_writer(&mut bytes)
        .map_err(|e| Error::config(format!("cannot encode the checkpoint: {e}")))?;
    let tmp = path.with_extension("checkpoint.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| io_error("create", &tmp, &e))?;
    file.write_all(&bytes)
        .map_err(|e| io_error("write", &tmp, &e))?;
    file.sync_all().map_err(|e| io_error("fsync", &tmp, &e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| io_error("rename over", path, &e))?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("fsync the directory of", path, &e))
}

impl CheckpointStore for FileCheckpointStore {
    fn load<'a>(&'a self, consumer: &'a str) -> BoxFuture<'a, Result<Option<Checkpoint>, Error>> {
        async move {
            let path = self.path(consumer)?;
            let _guard = self.lock.lock().await;
            tokio::task::spawn_blocking(move || read(&path))
                .await
                .map_err(|e| Error::config(format!("checkpoint read task failed: {e}")))?
        }
        .boxed()
    }

    fn commit<'a>(
        &'a self,
        consumer: &'a str,
        expected: u64,
        token: &'a Document,
        cluster_time: Option<Timestamp>,
        _fence: Option<u64>,
    ) -> BoxFuture<'a, Result<Checkpoint, CommitError>> {
        async move {
            let store_error = |source| CommitError::Store {
                consumer: consumer.to_owned(),
                source,
            };
            let path = self.path(consumer).map_err(store_error)?;
            // Owned and moved into the blocking write: a consumer aborted mid-commit (its task
            // cancelled, the blocking write still running) keeps the lock until the file is
            // written, so a successor sharing this store loads after it, never before.
            let guard = Arc::clone(&self.lock).lock_owned().await;
            let dir = Arc::clone(&self.dir);
            let checkpoint = Checkpoint {
                token: token.clone(),
                version: expected + 1,
                cluster_time,
                committed_at: SystemTime::now(),
            };
            let written = checkpoint.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                let found = read(&path)?.map(|c| c.version);
                if found.unwrap_or(0) != expected {
                    return Ok(Err(found));
                }
                write_atomically(&dir, &path, &written).map(Ok)
            })
            .await
            .map_err(|e| store_error(Error::config(format!("checkpoint task failed: {e}"))))?
            .map_err(store_error)?;
            match outcome {
                Ok(()) => Ok(checkpoint),
                Err(found) => Err(CommitError::Conflict {
                    consumer: consumer.to_owned(),
                    expected,
                    found,
                }),
            }
        }
        .boxed()
    }

    fn clear<'a>(&'a self, consumer: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            let path = self.path(consumer)?;
            let _guard = self.lock.lock().await;
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error("remove", &path, &e)),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "keel-cs-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn meets_the_store_contract() {
        let dir = temp_dir("contract");
        super::super::contract::check(&FileCheckpointStore::new(&dir)).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn survives_a_new_store_on_the_same_directory_and_leaves_no_temp_file() {
        let dir = temp_dir("reopen");
        let token = doc! {"_data": "82aa"};
        FileCheckpointStore::new(&dir)
            .commit("c1", 0, &token, None, None)
            .await
            .unwrap();
        let loaded = FileCheckpointStore::new(&dir)
            .load("c1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((loaded.token, loaded.version), (token, 1));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["c1.checkpoint"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_corrupt_file_is_a_clear_error_and_a_bad_name_is_refused() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c1.checkpoint"), b"garbage").unwrap();
        let store = FileCheckpointStore::new(&dir);
        let err = store.load("c1").await.unwrap_err();
        assert!(err.detail().contains("is not a checkpoint"), "{err}");
        let err = store.load("../x").await.unwrap_err();
        assert!(err.detail().contains("not valid"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
