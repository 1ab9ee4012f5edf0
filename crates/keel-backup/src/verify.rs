//! `verify(dir)`: a backup checked at rest: the manifest says complete, every file's SHA-256,
//! the BSON framing of every document, and counts and digests against the manifest.

use std::path::Path;

use crate::files::{BsonReader, hash_file};
use crate::manifest::Manifest;
use crate::metadata::PRELUDE_FILE;
use crate::{BackupError, DocumentsDigest};

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Namespaces checked.
    pub namespaces: usize,
    /// Documents read and checked.
    pub documents: u64,
}

/// Checks the backup at `dir`; any problem makes it [`BackupError::NotIntact`], listing them all.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, BackupError> {
    let dir = dir.as_ref();
    let manifest = Manifest::read(dir)?;
    let mut problems = Vec::new();
    if !manifest.complete {
        problems.push("the manifest does not say the backup is complete".to_owned());
    }
    check_hash(dir, PRELUDE_FILE, &manifest.prelude_sha256, &mut problems);
    let mut documents = 0;
    for entry in &manifest.namespaces {
        let ns = format!("{}.{}", entry.db, entry.collection);
        check_hash(
            dir,
            &entry.metadata_file,
            &entry.metadata_sha256,
            &mut problems,
        );
        let (Some(file), Some(sha)) = (&entry.bson_file, &entry.bson_sha256) else {
            continue;
        };
        if !check_hash(dir, file, sha, &mut problems) {
            continue;
        }
        let mut reader = match BsonReader::open(&dir.join(file)) {
            Ok(reader) => reader,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let mut digest = DocumentsDigest::default();
        loop {
            match reader.next_document() {
                Ok(Some(doc)) => digest.add(doc.as_bytes()),
                Ok(None) => break,
                Err(why) => {
                    problems.push(why);
                    break;
                }
            }
        }
        if digest.count() != entry.count {
            problems.push(format!(
                "{ns}: {} holds {} documents, the manifest says {}",
                reader.path().display(),
                digest.count(),
                entry.count
            ));
        } else if digest.hex() != entry.documents_digest {
            problems.push(format!(
                "{ns}: the documents' digest differs from the manifest's"
            ));
        }
        documents += digest.count();
    }
    if let Some(changes) = &manifest.changes
        && check_hash(dir, &changes.file, &changes.sha256, &mut problems)
    {
        match count_documents(&dir.join(&changes.file)) {
            Ok(n) if n == changes.count => {}
            Ok(n) => problems.push(format!(
                "{} holds {n} changes, the manifest says {}",
                changes.file, changes.count
            )),
            Err(why) => problems.push(why),
        }
    }
    if problems.is_empty() {
        Ok(VerifyReport {
            namespaces: manifest.namespaces.len(),
            documents,
        })
    } else {
        Err(BackupError::NotIntact {
            dir: dir.to_owned(),
            problems,
        })
    }
}

/// How many well-framed documents a file holds, or where its framing breaks.
fn count_documents(path: &Path) -> Result<u64, String> {
    let mut reader = BsonReader::open(path).map_err(|e| e.to_string())?;
    let mut n = 0;
    while reader.next_document()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Whether `file` exists with the expected hash; a problem is recorded otherwise.
fn check_hash(dir: &Path, file: &str, expected: &str, problems: &mut Vec<String>) -> bool {
    let path = dir.join(file);
    if !path.exists() {
        problems.push(format!("{file} is missing"));
        return false;
    }
    match hash_file(&path) {
        Ok(written) if written.sha256 == expected => true,
        Ok(written) => {
            problems.push(format!(
                "{file} has SHA-256 {} but the manifest says {expected} ({} bytes on disk)",
                written.sha256, written.bytes
            ));
            false
        }
        Err(e) => {
            problems.push(e.to_string());
            false
        }
    }
}
