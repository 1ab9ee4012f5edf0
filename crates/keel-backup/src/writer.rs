//! A collection's documents file written on a blocking thread of its own: the dump's task only
//! drains the cursor and hands each batch over, while the writer appends the bytes, hashes the
//! file (SHA-256, through [`HashedFile`]) and adds each document to the order-independent
//! digest. Hashing costs about a third of a raw cursor drain (two SHA-256 passes over every
//! byte); on the dump's own task it delayed every `getMore`, here it runs while the next batch
//! is on the wire (mongodump does the same: `mongodump/mongodump.go`,
//! `dumpValidatedIterToWriter`, drains the cursor on a goroutine of its own "so disk i/o does
//! not block reads from the db"). One batch may wait between the two, so memory stays at a few
//! batches. A
//! restore's read-back uses the same thread without a file, for the digest alone.

use mongodb::bson::RawDocumentBuf;
use tokio::sync::mpsc;

use crate::files::HashedFile;
use crate::{BackupError, DocumentsDigest};

/// What the writer made of the documents: their digest, their uncompressed bytes and the
/// file's SHA-256 (empty without a file).
pub(crate) type Written = (DocumentsDigest, u64, String);

/// A running writer: [`send`](Self::send) batches, then [`finish`](Self::finish).
pub(crate) struct DocumentsWriter {
    sender: mpsc::Sender<Vec<RawDocumentBuf>>,
    task: tokio::task::JoinHandle<Result<Written, BackupError>>,
}

impl DocumentsWriter {
    /// Starts writing into `file`.
    pub(crate) fn start(file: HashedFile) -> Self {
        Self::spawn(Some(file))
    }

    /// Starts a digest of documents that are not written anywhere (a read-back).
    pub(crate) fn digest_only() -> Self {
        Self::spawn(None)
    }

    fn spawn(file: Option<HashedFile>) -> Self {
        let (sender, mut batches) = mpsc::channel::<Vec<RawDocumentBuf>>(1);
        let task = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let mut digest = DocumentsDigest::default();
            let mut bytes = 0u64;
            while let Some(batch) = batches.blocking_recv() {
                for document in &batch {
                    let raw = document.as_bytes();
                    if let Some(file) = &mut file {
                        file.write_all(raw)?;
                    }
                    digest.add(raw);
                    bytes += raw.len() as u64;
                }
            }
            let sha256 = match file {
                Some(file) => file.finish()?.sha256,
                None => String::new(),
            };
            Ok((digest, bytes, sha256))
        });
        Self { sender, task }
    }

    /// Hands a batch over; `false` when the writer has stopped (on an error that
    /// [`finish`](Self::finish) returns).
    pub(crate) async fn send(&self, batch: Vec<RawDocumentBuf>) -> bool {
        batch.is_empty() || self.sender.send(batch).await.is_ok()
    }

    /// Waits until everything sent is written and synced.
    pub(crate) async fn finish(self) -> Result<Written, BackupError> {
        drop(self.sender);
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(BackupError::io(
                "writing (the writer thread stopped)",
                "the documents file",
                std::io::Error::other(e.to_string()),
            )),
        }
    }
}
