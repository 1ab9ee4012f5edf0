//! Persistence: an append-only journal of [`WriteEvent`]s in `<dir>/journal.bson`, compacted
//! into a snapshot each time the server opens the directory.
//!
//! Each record is written with one `write` call before the command replies, so data survives
//! the process being killed; it is not `fsync`ed, so an operating-system crash may lose the tail.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bson::Document;

use super::WriteEvent;
use crate::error::TestkitError;

const FILE_NAME: &str = "journal.bson";

/// The open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    reported_error: bool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TestkitError + '_ {
    move |source| TestkitError::Persistence {
        path: path.to_owned(),
        source,
    }
}

impl Journal {
    /// Reads every complete record; a torn final record (killed mid-write) is ignored.
    pub(crate) fn read_all(dir: &Path) -> Result<Vec<WriteEvent>, TestkitError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut events = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= 4 {
            let len = i32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let Some(len) = usize::try_from(len)
                .ok()
                .filter(|&l| l >= 5 && l <= rest.len())
            else {
                break;
            };
            let mut record = &rest[..len];
            let doc =
                Document::from_reader(&mut record).map_err(|e| TestkitError::CorruptData {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let event =
                WriteEvent::from_document(&doc).ok_or_else(|| TestkitError::CorruptData {
                    path: path.clone(),
                    reason: format!("unknown journal record {doc}"),
                })?;
            events.push(event);
            rest = &rest[len..];
        }
        Ok(events)
    }

    /// Rewrites the journal as `snapshot` (atomically, via rename) and opens it for appending.
    pub(crate) fn compact_and_open(
        dir: &Path,
        snapshot: &[WriteEvent],
    ) -> Result<Self, TestkitError> {
        let path = dir.join(FILE_NAME);
        let tmp = dir.join("journal.bson.tmp");
        let mut buf = Vec::new();
        for event in snapshot {
            // Serializing an in-memory document into a Vec cannot fail.
            let _ = event.to_document().to_writer(&mut buf);
        }
        std::fs::write(&tmp, &buf).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self {
            path,
            file,
            reported_error: false,
        })
    }

    /// Appends one record. An I/O failure is reported once on stderr and the server keeps
    /// serving from memory: a test server that stops answering would hide the real failure.
    pub(crate) fn append(&mut self, event: &WriteEvent) {
        let mut buf = Vec::new();
        let _ = event.to_document().to_writer(&mut buf);
        if let Err(e) = self.file.write_all(&buf)
            && !self.reported_error
        {
            self.reported_error = true;
            eprintln!("keel-testkit: cannot write {}: {e}", self.path.display());
        }
    }
}
