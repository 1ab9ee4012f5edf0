//! `Restore::from(dir).into(&keel)`: a verified backup written back, drop-and-restore or merge
//! (upsert by `_id`), with namespace renames, collection options first and indexes after the
//! data, then counts and digests compared with the manifest.

use std::path::PathBuf;

use futures_util::TryStreamExt as _;
use mongodb::bson::{Document, RawDocumentBuf, doc};
use mongokeel::{Keel, Operation};

use crate::files::BsonReader;
use crate::manifest::{Manifest, NamespaceEntry};
use crate::metadata::CollectionMetadata;
use crate::{BackupError, DocumentsDigest, verify};

/// Documents per `insert_many` batch.
const BATCH: usize = 1000;
/// How many failures a restore error lists.
const FIRST_FAILURES: usize = 5;

/// A restore from a backup directory.
#[derive(Debug, Clone)]
pub struct Restore {
    from: PathBuf,
    drop: bool,
    renames: Vec<(String, String)>,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Namespaces restored (views included).
    pub namespaces: usize,
    /// Documents written.
    pub documents: u64,
}

impl Restore {
    /// A restore of the backup at `dir` (merge mode unless [`drop`](Self::drop)).
    pub fn from(dir: impl Into<PathBuf>) -> Self {
        Self {
            from: dir.into(),
            drop: false,
            renames: Vec::new(),
        }
    }

    /// Drop each target collection first (mongorestore `--drop`); otherwise documents are upserted
    /// by `_id` into what is there.
    pub fn drop(mut self, drop: bool) -> Self {
        self.drop = drop;
        self
    }

    /// Restore `from` as `to` (mongorestore `--nsFrom/--nsTo`): `db.coll` or a whole database
    /// (`db`, `db.*`).
    pub fn rename(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        let strip = |s: String| s.strip_suffix(".*").map(str::to_owned).unwrap_or(s);
        self.renames.push((strip(from.into()), strip(to.into())));
        self
    }

    fn target(&self, db: &str, coll: &str) -> (String, String) {
        let full = format!("{db}.{coll}");
        for (from, to) in &self.renames {
            if *from == full {
                if let Some((d, c)) = to.split_once('.') {
                    return (d.to_owned(), c.to_owned());
                }
            } else if from == db && !from.contains('.') {
                return (to.clone(), coll.to_owned());
            }
        }
        (db.to_owned(), coll.to_owned())
    }

    /// Verifies the backup, then restores it into the deployment behind `keel`.
    pub async fn into(self, keel: &Keel) -> Result<RestoreReport, BackupError> {
        verify(&self.from)?;
        let manifest = Manifest::read(&self.from)?;
        let mut documents = 0;
        // Collections before views: a view's source must exist first.
        let mut entries: Vec<&NamespaceEntry> = manifest.namespaces.iter().collect();
        entries.sort_by_key(|e| e.collection_type == "view");
        for entry in &entries {
            documents += self.restore_one(keel, entry).await?;
        }
        Ok(RestoreReport {
            namespaces: entries.len(),
            documents,
        })
    }

    async fn restore_one(&self, keel: &Keel, entry: &NamespaceEntry) -> Result<u64, BackupError> {
        let (db, coll) = self.target(&entry.db, &entry.collection);
        let ns = format!("{db}.{coll}");
        let path = self.from.join(&entry.metadata_file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| BackupError::io("reading", &path, e))?;
        let metadata =
            CollectionMetadata::from_json(&text).map_err(|message| BackupError::BadFile {
                path,
                what: "mongodump metadata file",
                message,
            })?;
        let database = keel.client().current().database(&db);
        if self.drop {
            let (d, c) = (db.clone(), coll.clone());
            keel.run(Operation::write(
                "restore.drop",
                true,
                move |client: mongodb::Client| {
                    let (d, c) = (d.clone(), c.clone());
                    async move { client.database(&d).collection::<Document>(&c).drop().await }
                },
            ))
            .await?;
        }
        let exists = database
            .list_collection_names()
            .filter(doc! {"name": &coll})
            .await
            .map_err(crate::error::driver)?
            .contains(&coll);
        if !exists {
            let mut create = doc! {"create": &coll};
            create.extend(metadata.options.clone());
            database
                .run_command(create)
                .await
                .map_err(crate::error::driver)?;
        }
        let Some(file) = &entry.bson_file else {
            return Ok(0);
        };

        let collection = database.collection::<RawDocumentBuf>(&coll);
        let mut reader = BsonReader::open(&self.from.join(file))?;
        let mut written = 0u64;
        let mut failures: Vec<String> = Vec::new();
        let mut failed = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let next = reader
                .next_document()
                .map_err(|message| BackupError::RestoreFailed {
                    namespace: ns.clone(),
                    message,
                })?;
            let done = next.is_none();
            if let Some(doc) = next {
                batch.push(doc);
            }
            if batch.len() >= BATCH || (done && !batch.is_empty()) {
                let docs = std::mem::take(&mut batch);
                let n = docs.len() as u64;
                if self.drop {
                    match collection.insert_many(docs).ordered(false).await {
                        Ok(_) => written += n,
                        Err(e) => {
                            failed += n;
                            if failures.len() < FIRST_FAILURES {
                                failures.push(keel_core::Error::from(e).to_string());
                            }
                        }
                    }
                } else {
                    for doc in docs {
                        let id = doc.get("_id").ok().flatten().map(|id| id.to_raw_bson());
                        let Some(id) = id else { continue };
                        let filter =
                            doc! {"_id": mongodb::bson::Bson::try_from(id).unwrap_or_default()};
                        match collection.replace_one(filter, doc).upsert(true).await {
                            Ok(_) => written += 1,
                            Err(e) => {
                                failed += 1;
                                if failures.len() < FIRST_FAILURES {
                                    failures.push(keel_core::Error::from(e).to_string());
                                }
                            }
                        }
                    }
                }
            }
            if done {
                break;
            }
        }
        if failed > 0 {
            return Err(BackupError::RestoreFailed {
                namespace: ns,
                message: format!(
                    "{written} documents restored, {failed} failed; first failures: {}",
                    failures.join("; ")
                ),
            });
        }
        // Indexes after the data (as mongorestore), `_id_` exists already.
        let indexes: Vec<Document> = metadata
            .indexes
            .iter()
            .filter(|i| i.get_str("name").is_ok_and(|n| n != "_id_"))
            .map(|i| {
                let mut i = i.clone();
                i.remove("ns");
                i
            })
            .collect();
        if !indexes.is_empty() {
            database
                .run_command(doc! {"createIndexes": &coll, "indexes": indexes})
                .await
                .map_err(crate::error::driver)?;
        }
        if self.drop {
            self.compare(&collection, entry, &ns).await?;
        }
        tracing::info!(namespace = %ns, documents = written, "namespace restored");
        Ok(written)
    }

    /// After a drop-and-restore, the target holds exactly the backup's documents.
    async fn compare(
        &self,
        collection: &mongodb::Collection<RawDocumentBuf>,
        entry: &NamespaceEntry,
        ns: &str,
    ) -> Result<(), BackupError> {
        let mut cursor = collection
            .find(doc! {})
            .await
            .map_err(crate::error::driver)?;
        let mut digest = DocumentsDigest::default();
        while let Some(doc) = cursor.try_next().await.map_err(crate::error::driver)? {
            digest.add(doc.as_bytes());
        }
        if digest.count() != entry.count || digest.hex() != entry.documents_digest {
            return Err(BackupError::RestoreFailed {
                namespace: ns.to_owned(),
                message: format!(
                    "the target holds {} documents (the manifest says {}) and its digest {} the manifest's",
                    digest.count(),
                    entry.count,
                    if digest.hex() == entry.documents_digest {
                        "matches"
                    } else {
                        "differs from"
                    }
                ),
            });
        }
        Ok(())
    }
}
