//! `Restore::from(dir).into(&keel)`: a verified backup written back, drop-and-restore or merge
//! (upsert by `_id`), with namespace renames, collection options first, then the data, the
//! captured changes replayed to the consistent point, and indexes last; counts and digests are
//! compared with the manifest. A restore that is killed keeps its per-namespace progress in the
//! target (`keel_restore.progress`), so running it again continues without duplicates.

use std::future::IntoFuture as _;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use mongokeel::{Keel, Operation};

use crate::changes::{Replay, collection_uuid, parse_event};
use crate::ddl::{Action, Catalog, create_command};
use crate::files::BsonReader;
use crate::manifest::{Manifest, NamespaceEntry};
use crate::metadata::CollectionMetadata;
use crate::progress::{Progress, ProgressSink};
use crate::resume::{Checkpoint, ProgressStore};
use crate::transient::{is_transient, retry};
use crate::writer::DocumentsWriter;
use crate::{BackupError, DocumentsDigest, verify};

/// The database where restores keep their per-namespace progress (never backed up).
pub(crate) const PROGRESS_DB: &str = "keel_restore";

/// How many failures a restore error lists.
const FIRST_FAILURES: usize = 5;

/// `NamespaceNotFound` and `NamespaceExists`: a collection change a re-run already applied.
const NAMESPACE_NOT_FOUND: i32 = 26;
const NAMESPACE_EXISTS: i32 = 48;

/// A restore from a backup directory.
#[derive(Debug, Clone)]
pub struct Restore {
    from: PathBuf,
    drop: bool,
    renames: Vec<(String, String)>,
    batch_size: usize,
    progress: ProgressSink,
    outage_deadline: Duration,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Namespaces restored (views included).
    pub namespaces: usize,
    /// Documents written (after a resume: by this run).
    pub documents: u64,
    /// Captured changes replayed to reach the consistent point.
    pub changes: u64,
    /// Namespaces whose data an earlier, interrupted run had already written in part or whole.
    pub resumed: usize,
}

/// Failed writes of one namespace: how many, and the first few messages.
#[derive(Debug, Default)]
struct Failures {
    count: u64,
    first: Vec<String>,
}

impl Failures {
    /// A failed write of `n` documents. An unordered `insert_many` says which documents failed
    /// and why: those are counted and their server messages kept (not the driver's whole error).
    fn add(&mut self, n: u64, error: mongodb::error::Error) {
        if let mongodb::error::ErrorKind::InsertMany(mongodb::error::InsertManyError {
            write_errors: Some(errors),
            ..
        }) = error.kind.as_ref()
            && !errors.is_empty()
        {
            self.count += errors.len() as u64;
            for e in errors
                .iter()
                .take(FIRST_FAILURES.saturating_sub(self.first.len()))
            {
                self.first.push(format!("{} (code {})", e.message, e.code));
            }
            return;
        }
        self.count += n;
        if self.first.len() < FIRST_FAILURES {
            self.first.push(keel_core::Error::from(error).to_string());
        }
    }
}

/// One `insert_many` of a batch, running while the next batch is prepared; it hands the batch
/// back, to be written again by upserts if the insert failed transiently.
type InsertTask = tokio::task::JoinHandle<(
    Result<mongodb::results::InsertManyResult, mongodb::error::Error>,
    Vec<RawDocumentBuf>,
)>;

impl Restore {
    /// A restore of the backup at `dir` (merge mode unless [`drop`](Self::drop)).
    pub fn from(dir: impl Into<PathBuf>) -> Self {
        Self {
            from: dir.into(),
            drop: false,
            renames: Vec::new(),
            batch_size: 1000,
            progress: ProgressSink::default(),
            outage_deadline: Duration::from_secs(30),
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

    /// Documents per write (default 1000). Progress is recorded after each batch.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Sends [`Progress`] events to `sender`.
    pub fn progress(mut self, sender: tokio::sync::mpsc::Sender<Progress>) -> Self {
        self.progress = ProgressSink::new(sender);
        self
    }

    /// How long a step that fails transiently (a connection reset, a step-down) is tried
    /// again before the restore fails (default 30 s, counted from the step's first failure).
    /// A batch whose insert failed that way is written again by upserts, so nothing is
    /// duplicated.
    pub fn outage_deadline(mut self, deadline: Duration) -> Self {
        self.outage_deadline = deadline;
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
        let store = ProgressStore::new(keel, &self.from, self.drop, self.outage_deadline)?;
        // Collections before views: a view's source must exist first.
        let mut entries: Vec<&NamespaceEntry> = manifest.namespaces.iter().collect();
        entries.sort_by_key(|e| e.collection_type == "view");
        let planned = entries
            .iter()
            .map(|e| {
                let (db, coll) = self.target(&e.db, &e.collection);
                (format!("{db}.{coll}"), e.count)
            })
            .collect();
        self.progress
            .send(Progress::Planned {
                namespaces: planned,
            })
            .await;
        let mut report = RestoreReport {
            namespaces: entries.len(),
            documents: 0,
            changes: 0,
            resumed: 0,
        };
        let mut catalog = Catalog::default();
        for entry in &entries {
            let (metadata, written, resumed) = self.restore_data(keel, &store, entry).await?;
            report.documents += written;
            report.resumed += usize::from(resumed);
            if entry.collection_type != "view" {
                catalog.restored(
                    (entry.db.clone(), entry.collection.clone()),
                    metadata.uuid.clone(),
                    metadata.indexes,
                );
            }
        }
        report.changes = self.replay(keel, &manifest, &mut catalog).await?;
        for ((db, coll), indexes) in catalog.into_indexes() {
            self.create_indexes(keel, &db, &coll, indexes).await?;
        }
        store.finish().await?;
        Ok(report)
    }

    /// Options, then the documents (continuing an interrupted run from its checkpoint), then the
    /// comparison with the manifest. Returns the metadata, the documents written by this run and
    /// whether an earlier run had begun this namespace.
    async fn restore_data(
        &self,
        keel: &Keel,
        store: &ProgressStore,
        entry: &NamespaceEntry,
    ) -> Result<(CollectionMetadata, u64, bool), BackupError> {
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
        let checkpoint = store.load(&ns).await?;
        let resumed = checkpoint.is_some();
        if let Some(Checkpoint { verified: true, .. }) = checkpoint {
            tracing::info!(namespace = %ns, "namespace already restored by an interrupted run");
            return Ok((metadata, 0, true));
        }
        let database = keel.client().current().database(&db);
        if checkpoint.is_none() {
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
            let deadline = self.outage_deadline;
            let exists = retry(deadline, "listing the target's collections", || {
                database
                    .list_collection_names()
                    .filter(doc! {"name": &coll})
                    .into_future()
            })
            .await
            .map_err(crate::error::driver)?
            .contains(&coll);
            if !exists {
                let mut create = doc! {"create": &coll};
                create.extend(metadata.options.clone());
                // A retried create whose first attempt went through finds it there (48).
                retry(deadline, "creating the collection", || async {
                    match database.run_command(create.clone()).await {
                        Err(e) if crate::error::command_code(&e) == Some(NAMESPACE_EXISTS) => {
                            Ok(())
                        }
                        other => other.map(drop),
                    }
                })
                .await
                .map_err(crate::error::driver)?;
            }
        }
        let Some(file) = &entry.bson_file else {
            store.save(&ns, entry.count, 0, true).await?;
            return Ok((metadata, 0, resumed));
        };
        let collection = database.collection::<RawDocumentBuf>(&coll);
        let mut reader = BsonReader::open(&self.from.join(file))?;
        let broken = |message| BackupError::RestoreFailed {
            namespace: ns.clone(),
            message,
        };
        // Documents an earlier run wrote for sure are skipped; the batch it had in flight may or
        // may not be there, so it is upserted (replace by `_id`), never inserted twice.
        let (mut done, mut uncertain) = match &checkpoint {
            Some(c) => (c.documents, c.in_flight),
            None => (0, 0),
        };
        for _ in 0..done {
            if reader.next_document().map_err(broken)?.is_none() {
                break;
            }
        }
        let mut written = 0u64;
        let mut bytes = 0u64;
        let mut failures = Failures::default();
        // In drop mode two batches are in flight (as mongorestore's insertion workers): while one
        // insert runs, the next batch is read and its checkpoint written. The checkpoint before
        // each launch counts every batch not yet acknowledged as in flight, so a killed run's
        // resume upserts exactly those again.
        let mut pending: Option<(u64, InsertTask)> = None;
        loop {
            let mut batch = Vec::with_capacity(self.batch_size);
            while batch.len() < self.batch_size {
                match reader.next_document().map_err(broken)? {
                    Some(doc) => batch.push(doc),
                    None => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            let n = batch.len() as u64;
            bytes += batch.iter().map(|d| d.as_bytes().len() as u64).sum::<u64>();
            if self.drop && uncertain == 0 {
                let before = pending.as_ref().map_or(0, |(m, _)| *m);
                // Before the write: `done` documents are surely there; this batch and the one
                // still running may be.
                store.save(&ns, done, before + n, false).await?;
                let coll = collection.clone();
                let task = tokio::spawn(async move {
                    let result = coll.insert_many(&batch).ordered(false).await;
                    (result, batch)
                });
                if let Some((m, previous)) = pending.replace((n, task)) {
                    self.finish_insert(&collection, m, previous, &mut failures)
                        .await;
                    done += m;
                    written += m;
                    self.batch_progress(&ns, done, bytes).await;
                }
                continue;
            }
            // Before the write: `done` documents are surely there, `n` may be (a killed run's
            // batch in flight, upserted again on resume).
            store.save(&ns, done, n, false).await?;
            for doc in batch {
                self.upsert(&collection, doc, &mut failures).await;
            }
            uncertain = uncertain.saturating_sub(n);
            done += n;
            written += n;
            // No second record here: the next batch's record (`done` written, the next batch in
            // flight) follows at once, and one that never comes only makes a resumed run upsert
            // this batch again. One checkpoint write per batch instead of two.
            self.batch_progress(&ns, done, bytes).await;
        }
        if let Some((m, last)) = pending.take() {
            self.finish_insert(&collection, m, last, &mut failures)
                .await;
            done += m;
            written += m;
            self.batch_progress(&ns, done, bytes).await;
        }
        if failures.count > 0 {
            return Err(BackupError::RestoreFailed {
                namespace: ns,
                message: format!(
                    "{} documents restored, {} failed; first failures: {}",
                    written - failures.count.min(written),
                    failures.count,
                    failures.first.join("; ")
                ),
            });
        }
        if self.drop {
            self.compare(&collection, entry, &ns).await?;
        }
        store.save(&ns, done, 0, true).await?;
        self.progress
            .send(Progress::Namespace {
                namespace: ns.clone(),
                documents: done,
                bytes,
                done: true,
            })
            .await;
        tracing::info!(namespace = %ns, documents = written, resumed, "namespace restored");
        Ok((metadata, written, resumed))
    }

    /// Awaits an insert of `n` documents and counts its failures. An insert that failed
    /// transiently (a reset, a step-down: it may or may not have been applied, in part) is
    /// written again by upserts, which cannot duplicate a document.
    async fn finish_insert(
        &self,
        collection: &mongodb::Collection<RawDocumentBuf>,
        n: u64,
        task: InsertTask,
        failures: &mut Failures,
    ) {
        match task.await {
            Ok((Ok(_), _)) => {}
            Ok((Err(e), batch)) if is_transient(&e) => {
                tracing::warn!(error = %keel_core::Error::from(e), documents = n, "a batch insert failed transiently; writing the batch again by upserts");
                for doc in batch {
                    self.upsert(collection, doc, failures).await;
                }
            }
            Ok((Err(e), _)) => failures.add(n, e),
            Err(e) => {
                failures.count += n;
                if failures.first.len() < FIRST_FAILURES {
                    failures
                        .first
                        .push(format!("a batch insert did not finish ({e})"));
                }
            }
        }
    }

    async fn batch_progress(&self, ns: &str, documents: u64, bytes: u64) {
        self.progress
            .send(Progress::Namespace {
                namespace: ns.to_owned(),
                documents,
                bytes,
                done: false,
            })
            .await;
    }

    async fn upsert(
        &self,
        collection: &mongodb::Collection<RawDocumentBuf>,
        doc: RawDocumentBuf,
        failures: &mut Failures,
    ) {
        let id = doc
            .get("_id")
            .ok()
            .flatten()
            .and_then(|id| Bson::try_from(id.to_raw_bson()).ok());
        let Some(id) = id else {
            // mongod gives every stored document an `_id`; one without cannot be matched.
            failures.count += 1;
            if failures.first.len() < FIRST_FAILURES {
                failures
                    .first
                    .push("a document without an _id cannot be upserted".into());
            }
            return;
        };
        let filter = doc! {"_id": id};
        let upserted = retry(self.outage_deadline, "upserting a document", || {
            collection
                .replace_one(filter.clone(), &doc)
                .upsert(true)
                .into_future()
        })
        .await;
        if let Err(e) = upserted {
            failures.add(1, e);
        }
    }

    /// The captured changes, applied in order to the restored namespaces. Each is idempotent
    /// (whole-document upserts, `$set`/`$unset` of final values, deletes by `_id`), so replaying
    /// them over documents that already hold some of them, or again after an interrupted run,
    /// ends at the same state.
    ///
    /// Collection and index changes follow the collection's UUID through the [`Catalog`]
    /// (`ddl.rs`): an event applies only to the namespace that holds its collection.
    async fn replay(
        &self,
        keel: &Keel,
        manifest: &Manifest,
        catalog: &mut Catalog,
    ) -> Result<u64, BackupError> {
        let Some(changes) = &manifest.changes else {
            return Ok(0);
        };
        let restored: std::collections::HashSet<(&str, &str)> = manifest
            .namespaces
            .iter()
            .filter(|e| e.collection_type != "view")
            .map(|e| (e.db.as_str(), e.collection.as_str()))
            .collect();
        let client = keel.client().current();
        let deadline = self.outage_deadline;
        let mut reader = BsonReader::open(&self.from.join(&changes.file))?;
        let broken = |message| BackupError::RestoreFailed {
            namespace: "the captured changes".into(),
            message,
        };
        let mut applied = 0u64;
        let mut failures = Failures::default();
        while let Some(raw) = reader.next_document().map_err(broken)? {
            let event = Document::try_from(raw.as_ref())
                .map_err(|e| broken(format!("a change is not a valid document: {e}")))?;
            let (db, coll, replay) = parse_event(&event).map_err(broken)?;
            let uuid = collection_uuid(&event);
            let ns = (db.clone(), coll.clone());
            let applies = match (&uuid, &replay) {
                // Expanded events: by the collection's UUID; `dropDatabase` follows the `drop`
                // of each of its collections, which did the work.
                (_, Replay::DropDatabase) if manifest.ddl_captured => false,
                (Some(_), Replay::Ddl(_) | Replay::Drop) => true,
                (Some(uuid), _) => catalog.holds(&ns, uuid),
                (None, Replay::DropDatabase) => restored.iter().any(|(d, _)| *d == db),
                (None, _) => restored.contains(&(db.as_str(), coll.as_str())),
            };
            if !applies {
                continue;
            }
            let (tdb, tcoll) = self.target(&db, &coll);
            let collection = client.database(&tdb).collection::<Document>(&tcoll);
            let result = match replay {
                Replay::Ddl(change) => {
                    let Some(uuid) = &uuid else {
                        tracing::warn!(namespace = %format!("{db}.{coll}"), "a collection change without collectionUUID is not replayed");
                        continue;
                    };
                    let action = catalog.apply(&ns, uuid, change);
                    retry(deadline, "replaying a collection change", || {
                        self.apply_ddl(&client, (&tdb, &tcoll), action.clone())
                    })
                    .await
                }
                Replay::Drop if uuid.is_some() => {
                    if catalog.drop(&ns, uuid.as_deref().unwrap_or_default()) {
                        retry(deadline, "replaying a drop", || {
                            collection.drop().into_future()
                        })
                        .await
                    } else {
                        continue;
                    }
                }
                Replay::Put { id, document } => {
                    let filter = doc! {"_id": id};
                    retry(deadline, "replaying a document change", || {
                        collection
                            .replace_one(filter.clone(), &document)
                            .upsert(true)
                            .into_future()
                    })
                    .await
                    .map(drop)
                }
                Replay::Update {
                    id,
                    truncate,
                    update,
                } => {
                    let mut result = Ok(());
                    for u in [truncate, update].into_iter().flatten() {
                        result = retry(deadline, "replaying an update", || {
                            collection
                                .update_one(doc! {"_id": id.clone()}, u.clone())
                                .into_future()
                        })
                        .await
                        .map(drop);
                        if result.is_err() {
                            break;
                        }
                    }
                    result
                }
                Replay::Delete { id } => {
                    let filter = doc! {"_id": id};
                    retry(deadline, "replaying a delete", || {
                        collection.delete_one(filter.clone()).into_future()
                    })
                    .await
                    .map(drop)
                }
                Replay::Drop => {
                    retry(deadline, "replaying a drop", || {
                        collection.drop().into_future()
                    })
                    .await
                }
                Replay::DropDatabase => {
                    // Only the backed-up collections of that database, under their new names.
                    let mut result = Ok(());
                    for (d, c) in restored.iter().filter(|(d, _)| *d == db) {
                        let (td, tc) = self.target(d, c);
                        let target = client.database(&td).collection::<Document>(&tc);
                        result =
                            retry(deadline, "replaying a drop", || target.drop().into_future())
                                .await;
                        if result.is_err() {
                            break;
                        }
                    }
                    result
                }
                Replay::Skip(kind) => {
                    tracing::warn!(%kind, namespace = %format!("{db}.{coll}"), "a captured change of this kind is not replayed");
                    Ok(())
                }
            };
            match result {
                Ok(()) => applied += 1,
                Err(e) => failures.add(1, e),
            }
            if applied.is_multiple_of(100) {
                self.progress
                    .send(Progress::Changes {
                        count: applied,
                        done: false,
                    })
                    .await;
            }
        }
        if failures.count > 0 {
            return Err(BackupError::RestoreFailed {
                namespace: "the captured changes".into(),
                message: format!(
                    "{applied} changes replayed, {} failed; first failures: {}",
                    failures.count,
                    failures.first.join("; ")
                ),
            });
        }
        self.progress
            .send(Progress::Changes {
                count: applied,
                done: true,
            })
            .await;
        tracing::info!(
            changes = applied,
            "captured changes replayed to the consistent point"
        );
        Ok(applied)
    }

    /// One collection change in the target. Each is idempotent for a re-run: a collection that
    /// exists already (48) is not created again, a source already renamed or dropped (26) is
    /// not an error.
    async fn apply_ddl(
        &self,
        client: &mongodb::Client,
        (db, coll): (&str, &str),
        action: Action,
    ) -> mongodb::error::Result<()> {
        let tolerate = |result: mongodb::error::Result<Document>, code: i32| match result {
            Err(e) if crate::error::command_code(&e) == Some(code) => Ok(()),
            other => other.map(drop),
        };
        let database = client.database(db);
        match action {
            Action::None => Ok(()),
            Action::Create(options) => {
                if self.drop {
                    database.collection::<Document>(coll).drop().await?;
                }
                let created = database.run_command(create_command(coll, &options)).await;
                tolerate(created, NAMESPACE_EXISTS)
            }
            Action::CollMod(options) => {
                let mut command = doc! {"collMod": coll};
                command.extend(options);
                tolerate(database.run_command(command).await, NAMESPACE_NOT_FOUND)
            }
            Action::Rename((to_db, to_coll)) => {
                let (to_db, to_coll) = self.target(&to_db, &to_coll);
                let command = doc! {
                    "renameCollection": format!("{db}.{coll}"),
                    "to": format!("{to_db}.{to_coll}"),
                    "dropTarget": true,
                };
                let renamed = client.database("admin").run_command(command).await;
                tolerate(renamed, NAMESPACE_NOT_FOUND)
            }
            Action::Drop => database.collection::<Document>(coll).drop().await,
        }
    }

    /// Indexes after the data and the changes (as mongorestore builds them after the data);
    /// `_id_` exists already, and an index that exists with the same spec is a no-op.
    async fn create_indexes(
        &self,
        keel: &Keel,
        db: &str,
        coll: &str,
        indexes: Vec<Document>,
    ) -> Result<(), BackupError> {
        let (db, coll) = self.target(db, coll);
        if !indexes.is_empty() {
            let database = keel.client().current().database(&db);
            let command = doc! {"createIndexes": &coll, "indexes": indexes};
            retry(self.outage_deadline, "creating the indexes", || {
                database.run_command(command.clone()).into_future()
            })
            .await
            .map_err(crate::error::driver)?;
        }
        Ok(())
    }

    /// Every document's digest, read in `_id` order and continued after the last `_id` read when
    /// the cursor fails transiently, until the outage deadline has passed since the first
    /// failure without progress.
    async fn read_back_by_id(
        &self,
        collection: &mongodb::Collection<RawDocumentBuf>,
    ) -> Result<DocumentsDigest, BackupError> {
        let mut digest = DocumentsDigest::default();
        let mut last: Option<Bson> = None;
        let mut failing_since: Option<std::time::Instant> = None;
        let mut backoff = Duration::from_millis(50);
        loop {
            let filter = match &last {
                Some(id) => doc! {"_id": {"$gt": id.clone()}},
                None => doc! {},
            };
            let before = digest.count();
            let pass: mongodb::error::Result<()> = async {
                let mut cursor = collection.find(filter).sort(doc! {"_id": 1}).await?;
                while let Some(doc) = cursor.try_next().await? {
                    digest.add(doc.as_bytes());
                    last = doc
                        .get("_id")
                        .ok()
                        .flatten()
                        .and_then(|id| Bson::try_from(id.to_raw_bson()).ok());
                }
                Ok(())
            }
            .await;
            let Err(e) = pass else {
                return Ok(digest);
            };
            if digest.count() > before {
                failing_since = None;
                backoff = Duration::from_millis(50);
            }
            let since = *failing_since.get_or_insert_with(std::time::Instant::now);
            if !is_transient(&e) || since.elapsed() >= self.outage_deadline {
                return Err(crate::error::driver(e));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// After a drop-and-restore, the target holds exactly the backup's documents.
    async fn compare(
        &self,
        collection: &mongodb::Collection<RawDocumentBuf>,
        entry: &NamespaceEntry,
        ns: &str,
    ) -> Result<(), BackupError> {
        // One pass in natural order (the cheapest scan); if it is cut by a transient failure,
        // again in `_id` order, continuing after the last `_id` read at each failure.
        // The documents are hashed on a thread of their own while the cursor drains.
        let hasher = DocumentsWriter::digest_only();
        let first: mongodb::error::Result<()> = async {
            let mut cursor = collection.find(doc! {}).await?;
            let mut batch = Vec::with_capacity(self.batch_size);
            while let Some(doc) = cursor.try_next().await? {
                batch.push(doc);
                if batch.len() == self.batch_size {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(self.batch_size));
                    hasher.send(full).await;
                }
            }
            hasher.send(batch).await;
            Ok(())
        }
        .await;
        let (mut digest, _, _) = hasher.finish().await?;
        match first {
            Ok(()) => {}
            Err(e) if is_transient(&e) => {
                tracing::warn!(namespace = %ns, error = %keel_core::Error::from(e), "the read-back failed transiently; reading again in _id order");
                digest = self.read_back_by_id(collection).await?;
            }
            Err(e) => return Err(crate::error::driver(e)),
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
