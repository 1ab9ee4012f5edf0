//! mongodump's `--archive` format, written from a Keel backup directory and read back into one
//! (so `keel restore` also restores archives that mongodump made, after checking them).
//!
//! The framing follows mongo-tools `common/archive/spec.md` and `multiplexer.go`: the magic
//! number 0x8199e26d (little-endian), a header document `{concurrent_collections, version:
//! "0.1", server_version, tool_version}`, one `{db, collection, metadata, size}` document per
//! namespace (`metadata` is the `.metadata.json` text), the terminator 0xffffffff, then
//! interleaved segments: a `{db, collection, EOF: false, CRC: 0}` header, documents, the
//! terminator; each namespace ends with `{db, collection, EOF: true, CRC}` and the terminator,
//! where `CRC` is Go's `crc64.ECMA` checksum (CRC-64/XZ) of all the namespace's document bytes,
//! stored as an int64.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Read, Write};
use std::path::Path;

use mongodb::bson::{Document, RawDocumentBuf, doc};

use crate::files::{BsonReader, HashedFile, create_private, write_small};
use crate::manifest::{MANIFEST_FILE, Manifest, NamespaceEntry};
use crate::metadata::{CollectionMetadata, PRELUDE_FILE, Prelude, indexes_digest};
use crate::namespace::file_stem;
use crate::{BackupError, DocumentsDigest, verify};

/// The archive's magic number (`0x8199e26d`, written little-endian).
const MAGIC: u32 = 0x8199_e26d;
/// Ends the metadata block and every segment.
const TERMINATOR: [u8; 4] = [0xff; 4];
/// Go's `crc64.MakeTable(crc64.ECMA)` with `crc64.New`: reflected, init and xorout all ones,
/// which is the catalogued CRC-64/XZ.
const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

fn bad(path: &Path, message: impl Into<String>) -> BackupError {
    BackupError::BadFile {
        path: path.to_owned(),
        what: "mongodump archive",
        message: message.into(),
    }
}

fn bson_bytes(path: &Path, d: &Document) -> Result<Vec<u8>, BackupError> {
    let mut out = Vec::new();
    d.to_writer(&mut out)
        .map_err(|e| bad(path, e.to_string()))?;
    Ok(out)
}

/// Writes the (verified) Keel backup at `dir` as one mongodump archive file at `archive`
/// (mode 0600; `mongorestore --archive=FILE` reads it).
pub fn write_archive(dir: &Path, archive: &Path) -> Result<(), BackupError> {
    write_archive_with(dir, archive, false)
}

/// [`write_archive`], gzip-compressed when `gzip`: as `mongodump --archive --gzip`, the whole
/// archive stream goes through one gzip writer (mongo-tools `mongodump/mongodump.go`,
/// `getArchiveOut`: `gzip.NewWriter(out)`), which `mongorestore --archive=FILE --gzip` reads.
pub fn write_archive_with(dir: &Path, archive: &Path, gzip: bool) -> Result<(), BackupError> {
    verify(dir)?;
    let manifest = Manifest::read(dir)?;
    let file = create_private(archive)?;
    let out = BufWriter::with_capacity(256 * 1024, file);
    let io = |e| BackupError::io("writing", archive, e);
    let out = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        write_stream(dir, archive, &manifest, &mut encoder)?;
        encoder.finish().map_err(io)?
    } else {
        let mut out = out;
        write_stream(dir, archive, &manifest, &mut out)?;
        out
    };
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

/// The archive stream itself: magic, header, metadata, terminator, segments.
fn write_stream(
    dir: &Path,
    archive: &Path,
    manifest: &Manifest,
    out: &mut impl Write,
) -> Result<(), BackupError> {
    let io = |e| BackupError::io("writing", archive, e);
    out.write_all(&MAGIC.to_le_bytes()).map_err(io)?;
    let header = doc! {
        "concurrent_collections": 1_i32,
        "version": "0.1",
        "server_version": &manifest.server_version,
        "tool_version": &manifest.tool_version,
    };
    out.write_all(&bson_bytes(archive, &header)?).map_err(io)?;
    for entry in &manifest.namespaces {
        let path = dir.join(&entry.metadata_file);
        let metadata =
            std::fs::read_to_string(&path).map_err(|e| BackupError::io("reading", &path, e))?;
        let record = doc! {
            "db": &entry.db,
            "collection": &entry.collection,
            "metadata": metadata,
            "size": i32::try_from(entry.bytes).unwrap_or(i32::MAX),
        };
        out.write_all(&bson_bytes(archive, &record)?).map_err(io)?;
    }
    out.write_all(&TERMINATOR).map_err(io)?;
    for entry in &manifest.namespaces {
        let Some(file) = &entry.bson_file else {
            continue;
        };
        let mut crc = CRC.digest();
        let mut reader = BsonReader::open(&dir.join(file))?;
        let segment =
            doc! {"db": &entry.db, "collection": &entry.collection, "EOF": false, "CRC": 0_i64};
        let mut opened = false;
        while let Some(document) = reader.next_document().map_err(|m| bad(archive, m))? {
            if !opened {
                out.write_all(&bson_bytes(archive, &segment)?).map_err(io)?;
                opened = true;
            }
            crc.update(document.as_bytes());
            out.write_all(document.as_bytes()).map_err(io)?;
        }
        if opened {
            out.write_all(&TERMINATOR).map_err(io)?;
        }
        let eof = doc! {
            "db": &entry.db,
            "collection": &entry.collection,
            "EOF": true,
            "CRC": crc.finalize() as i64,
        };
        out.write_all(&bson_bytes(archive, &eof)?).map_err(io)?;
        out.write_all(&TERMINATOR).map_err(io)?;
    }
    Ok(())
}

/// One framed item of the archive stream.
enum Item {
    Document(RawDocumentBuf),
    Terminator,
    End,
}

struct ArchiveReader<'a> {
    inner: BufReader<Box<dyn Read>>,
    path: &'a Path,
}

impl ArchiveReader<'_> {
    fn next(&mut self) -> Result<Item, BackupError> {
        let mut len = [0u8; 4];
        match self.inner.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(Item::End),
            Err(e) => return Err(BackupError::io("reading", self.path, e)),
        }
        if len == TERMINATOR {
            return Ok(Item::Terminator);
        }
        let size = i32::from_le_bytes(len);
        if !(5..=48 * 1024 * 1024).contains(&size) {
            return Err(bad(self.path, format!("a document claims {size} bytes")));
        }
        let mut bytes = vec![0u8; size as usize];
        bytes[..4].copy_from_slice(&len);
        self.inner.read_exact(&mut bytes[4..]).map_err(|e| {
            bad(
                self.path,
                format!("the archive ends inside a document ({e})"),
            )
        })?;
        let document = RawDocumentBuf::from_bytes(bytes)
            .map_err(|e| bad(self.path, format!("a document is not valid BSON ({e})")))?;
        Ok(Item::Document(document))
    }

    fn document(&mut self, what: &str) -> Result<Document, BackupError> {
        match self.next()? {
            Item::Document(raw) => Document::try_from(raw.as_ref())
                .map_err(|e| bad(self.path, format!("the {what} is not valid BSON ({e})"))),
            _ => Err(bad(self.path, format!("the {what} is missing"))),
        }
    }
}

/// A namespace being written out of the archive.
struct Open {
    file: HashedFile,
    digest: DocumentsDigest,
    bytes: u64,
    crc: crc::Digest<'static, u64>,
    done: bool,
}

/// Reads the mongodump archive at `archive` into a new Keel backup directory `dir` (the layout,
/// `prelude.json` and a manifest computed from what was read), checking the framing and every
/// namespace's CRC; any problem is an error and removes `dir`. The result restores and verifies
/// like any Keel backup.
pub fn read_archive(archive: &Path, dir: &Path) -> Result<Manifest, BackupError> {
    if dir.exists() {
        return Err(BackupError::DestinationExists(dir.to_owned()));
    }
    let result = read_into(archive, dir);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn read_into(archive: &Path, dir: &Path) -> Result<Manifest, BackupError> {
    let started_at = crate::backup::now();
    let file = File::open(archive).map_err(|e| BackupError::io("opening", archive, e))?;
    // A gzip'd archive (`mongodump --archive --gzip`) starts with gzip's magic 1f 8b; the
    // archive's own magic (6d e2 99 81) never does, so no flag is needed to read either.
    let mut file = BufReader::new(file);
    let gzip = file
        .fill_buf()
        .map_err(|e| BackupError::io("reading", archive, e))?
        .starts_with(&[0x1f, 0x8b]);
    let source: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = ArchiveReader {
        inner: BufReader::with_capacity(256 * 1024, source),
        path: archive,
    };
    let mut magic = [0u8; 4];
    reader
        .inner
        .read_exact(&mut magic)
        .map_err(|e| BackupError::io("reading", archive, e))?;
    if u32::from_le_bytes(magic) != MAGIC {
        return Err(bad(
            archive,
            "it does not start with the archive magic number 0x8199e26d (gzip'd or not): it is not a mongodump archive",
        ));
    }
    let header = reader.document("header")?;
    let server_version = header
        .get_str("server_version")
        .unwrap_or("unknown")
        .to_owned();
    std::fs::create_dir_all(dir).map_err(|e| BackupError::io("creating the directory", dir, e))?;
    let prelude = Prelude {
        server_version: server_version.clone(),
        tool_version: header
            .get_str("tool_version")
            .unwrap_or("unknown")
            .to_owned(),
    };
    let prelude_file = write_small(
        &dir.join(PRELUDE_FILE),
        serde_json::to_string(&prelude)
            .unwrap_or_default()
            .as_bytes(),
    )?;

    let mut entries: Vec<NamespaceEntry> = Vec::new();
    let mut open: HashMap<(String, String), Open> = HashMap::new();
    loop {
        let record = match reader.next()? {
            Item::Terminator => break,
            Item::Document(raw) => Document::try_from(raw.as_ref()).map_err(|e| {
                bad(
                    archive,
                    format!("a metadata record is not valid BSON ({e})"),
                )
            })?,
            Item::End => return Err(bad(archive, "it ends inside the metadata block")),
        };
        let (Ok(db), Ok(coll), Ok(text)) = (
            record.get_str("db"),
            record.get_str("collection"),
            record.get_str("metadata"),
        ) else {
            return Err(bad(
                archive,
                "a metadata record lacks db, collection or metadata",
            ));
        };
        let metadata = CollectionMetadata::from_json(text).map_err(|m| bad(archive, m))?;
        let db_dir = dir.join(db);
        std::fs::create_dir_all(&db_dir)
            .map_err(|e| BackupError::io("creating the directory", &db_dir, e))?;
        let stem = file_stem(coll);
        let metadata_file = format!("{db}/{stem}.metadata.json");
        let written = write_small(&dir.join(&metadata_file), metadata.to_json().as_bytes())?;
        let is_view = metadata.collection_type == "view";
        let bson_file = (!is_view).then(|| format!("{db}/{stem}.bson"));
        if let Some(name) = &bson_file {
            open.insert(
                (db.to_owned(), coll.to_owned()),
                Open {
                    file: HashedFile::create(dir.join(name), false)?,
                    digest: DocumentsDigest::default(),
                    bytes: 0,
                    crc: CRC.digest(),
                    done: false,
                },
            );
        }
        entries.push(NamespaceEntry {
            db: db.to_owned(),
            collection: coll.to_owned(),
            collection_type: metadata.collection_type.clone(),
            bson_file,
            metadata_file,
            count: 0,
            bytes: 0,
            bson_sha256: None,
            metadata_sha256: written.sha256,
            documents_digest: DocumentsDigest::default().hex(),
            indexes_digest: indexes_digest(&metadata.indexes),
        });
    }

    // Interleaved segments until the end of the file.
    loop {
        let header = match reader.next()? {
            Item::End => break,
            Item::Terminator => {
                return Err(bad(archive, "a terminator where a segment header belongs"));
            }
            Item::Document(raw) => Document::try_from(raw.as_ref())
                .map_err(|e| bad(archive, format!("a segment header is not valid BSON ({e})")))?,
        };
        let key = (
            header.get_str("db").unwrap_or_default().to_owned(),
            header.get_str("collection").unwrap_or_default().to_owned(),
        );
        let ns = format!("{}.{}", key.0, key.1);
        let Some(target) = open.get_mut(&key) else {
            return Err(bad(
                archive,
                format!("a segment of {ns}, which has no metadata record"),
            ));
        };
        if header.get_bool("EOF").unwrap_or(false) {
            let expected = header.get_i64("CRC").unwrap_or(0) as u64;
            let actual = target.crc.clone().finalize();
            if expected != actual {
                return Err(bad(
                    archive,
                    format!(
                        "the documents of {ns} do not match their CRC (the archive says {expected:#018x}, the documents give {actual:#018x})"
                    ),
                ));
            }
            target.done = true;
            match reader.next()? {
                Item::Terminator => continue,
                _ => return Err(bad(archive, format!("no terminator after the end of {ns}"))),
            }
        }
        loop {
            match reader.next()? {
                Item::Document(document) => {
                    target.crc.update(document.as_bytes());
                    target.digest.add(document.as_bytes());
                    target.bytes += document.as_bytes().len() as u64;
                    target.file.write_all(document.as_bytes())?;
                }
                Item::Terminator => break,
                Item::End => return Err(bad(archive, format!("it ends inside a segment of {ns}"))),
            }
        }
    }

    for entry in &mut entries {
        let key = (entry.db.clone(), entry.collection.clone());
        let Some(target) = open.remove(&key) else {
            continue;
        };
        if !target.done {
            return Err(bad(
                archive,
                format!(
                    "{}.{} has no end-of-namespace record: the archive is truncated",
                    entry.db, entry.collection
                ),
            ));
        }
        let written = target.file.finish()?;
        entry.count = target.digest.count();
        entry.bytes = target.bytes;
        entry.bson_sha256 = Some(written.sha256);
        entry.documents_digest = target.digest.hex();
    }
    entries.sort_by(|a, b| (&a.db, &a.collection).cmp(&(&b.db, &b.collection)));
    let manifest = Manifest {
        format: 1,
        tool_version: crate::TOOL_VERSION.to_owned(),
        server_version,
        started_at,
        finished_at: crate::backup::now(),
        cluster_time: None,
        gzip: false,
        prelude_sha256: prelude_file.sha256,
        namespaces: entries,
        changes: None,
        ddl_captured: false,
        complete: true,
        last_drill: None,
        last_good_drill: None,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| bad(archive, e.to_string()))?;
    write_small(&dir.join(MANIFEST_FILE), text.as_bytes())?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_gos_crc64_ecma() {
        // Go: crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ECMA)) = 0x995dc9bbdf1939fa.
        assert_eq!(CRC.checksum(b"123456789"), 0x995d_c9bb_df19_39fa);
    }
}
