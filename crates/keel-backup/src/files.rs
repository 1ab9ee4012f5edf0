//! Files as a backup writes them: mode 0600, hashed with SHA-256 as the bytes hit the disk,
//! optionally gzip-compressed, and read back the same way.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::BackupError;

/// A new file with mode 0600 (a backup holds all the data: only its owner reads it).
pub(crate) fn create_private(path: &Path) -> Result<File, BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| BackupError::io("creating", path, e))
}

/// Counts and hashes every byte written to the inner writer.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Sink {
    Plain(Hashing<BufWriter<File>>),
    Gzip(flate2::write::GzEncoder<Hashing<BufWriter<File>>>),
}

/// A file being written: its SHA-256 is of the bytes on disk (compressed, if gzip).
pub(crate) struct HashedFile {
    path: PathBuf,
    sink: Sink,
}

/// What a finished file is: its size on disk and its SHA-256.
#[derive(Debug, Clone)]
pub(crate) struct WrittenFile {
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
}

impl HashedFile {
    pub(crate) fn create(path: PathBuf, gzip: bool) -> Result<Self, BackupError> {
        let file = create_private(&path)?;
        let hashing = Hashing {
            inner: BufWriter::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let sink = if gzip {
            Sink::Gzip(flate2::write::GzEncoder::new(
                hashing,
                flate2::Compression::fast(),
            ))
        } else {
            Sink::Plain(hashing)
        };
        Ok(Self { path, sink })
    }

    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        let result = match &mut self.sink {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gzip(w) => w.write_all(bytes),
        };
        result.map_err(|e| BackupError::io("writing", &self.path, e))
    }

    /// Flushes, syncs to disk and returns the size and hash.
    pub(crate) fn finish(self) -> Result<WrittenFile, BackupError> {
        let path = self.path;
        let err = |e| BackupError::io("finishing", &path, e);
        let hashing = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(err)?,
        };
        let Hashing {
            inner,
            hasher,
            bytes,
        } = hashing;
        let file = inner.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        Ok(WrittenFile {
            bytes,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// Writes a whole small file (metadata, prelude, manifest) privately and returns its hash.
pub(crate) fn write_small(path: &Path, bytes: &[u8]) -> Result<WrittenFile, BackupError> {
    let mut file = HashedFile::create(path.to_owned(), false)?;
    file.write_all(bytes)?;
    file.finish()
}

/// The SHA-256 and size of a file as it is on disk.
pub(crate) fn hash_file(path: &Path) -> Result<WrittenFile, BackupError> {
    let mut file = File::open(path).map_err(|e| BackupError::io("opening", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| BackupError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(WrittenFile {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Reads concatenated BSON documents one at a time (mongodump's `.bson` framing: each document
/// starts with its little-endian int32 length and ends with a 0 byte).
pub(crate) struct BsonReader {
    inner: Box<dyn Read + Send>,
    path: PathBuf,
    offset: u64,
}

impl BsonReader {
    pub(crate) fn open(path: &Path) -> Result<Self, BackupError> {
        let file = File::open(path).map_err(|e| BackupError::io("opening", path, e))?;
        let buffered = BufReader::with_capacity(256 * 1024, file);
        let inner: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::GzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        Ok(Self {
            inner,
            path: path.to_owned(),
            offset: 0,
        })
    }

    /// The next document, `None` at a clean end, or a sentence saying where the framing breaks.
    pub(crate) fn next_document(
        &mut self,
    ) -> Result<Option<mongodb::bson::RawDocumentBuf>, String> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(self.broken("the file ends inside a document's length")),
                Ok(n) => got += n,
                Err(e) => return Err(self.broken(&format!("it cannot be read ({e})"))),
            }
        }
        let size = i32::from_le_bytes(len);
        if !(5..=48 * 1024 * 1024).contains(&size) {
            return Err(self.broken(&format!("a document claims {size} bytes")));
        }
        let mut bytes = vec![0u8; size as usize];
        bytes[..4].copy_from_slice(&len);
        if let Err(e) = self.inner.read_exact(&mut bytes[4..]) {
            return Err(self.broken(&format!("the file ends inside a document ({e})")));
        }
        let doc = mongodb::bson::RawDocumentBuf::from_bytes(bytes)
            .map_err(|e| self.broken(&format!("a document is not valid BSON ({e})")))?;
        for element in doc.iter() {
            if let Err(e) = element {
                return Err(self.broken(&format!("a document is not valid BSON ({e})")));
            }
        }
        self.offset += size as u64;
        Ok(Some(doc))
    }

    fn broken(&self, why: &str) -> String {
        format!(
            "{} is not valid BSON at byte {} of its documents: {why}",
            self.path.display(),
            self.offset
        )
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
