//! `Backup::builder(keel)...run()`: a mongodump-layout backup, streamed cursor batch by cursor
//! batch into files under a temporary name, renamed into place once the manifest is written.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{StreamExt as _, TryStreamExt as _};
use mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use mongokeel::{Keel, Operation, OperationKind};
use tokio::time::Instant;

use crate::changes::Capture;
use crate::files::{HashedFile, write_small};
use crate::manifest::{MANIFEST_FILE, Manifest, NamespaceEntry};
use crate::metadata::{CollectionMetadata, PRELUDE_FILE, Prelude};
use crate::namespace::{NamespaceFilter, file_stem};
use crate::progress::{Progress, ProgressSink};
use crate::writer::DocumentsWriter;
use crate::{BackupError, DocumentsDigest, TOOL_VERSION};

/// Entry point: [`Backup::builder`].
#[derive(Debug)]
pub struct Backup;

impl Backup {
    /// A backup of the deployment behind `keel`; every database but `admin`, `local` and
    /// `config` unless [`BackupBuilder::include`] narrows it.
    pub fn builder(keel: Keel) -> BackupBuilder {
        BackupBuilder {
            keel,
            include: Vec::new(),
            exclude: Vec::new(),
            dest: None,
            gzip: false,
            parallelism: 2,
            outage_deadline: Duration::from_secs(30),
            batch_size: 1000,
            consistent: true,
            progress: ProgressSink::default(),
        }
    }
}

/// Options of one backup.
#[derive(Debug)]
pub struct BackupBuilder {
    keel: Keel,
    include: Vec<String>,
    exclude: Vec<String>,
    dest: Option<PathBuf>,
    gzip: bool,
    parallelism: usize,
    outage_deadline: Duration,
    batch_size: u32,
    consistent: bool,
    progress: ProgressSink,
}

/// One collection or view to dump.
#[derive(Debug, Clone)]
struct Target {
    db: String,
    name: String,
    kind: String,
    options: Document,
    uuid: Option<String>,
}

impl Target {
    /// The same collection: name and UUID.
    fn key(&self) -> (String, String, Option<String>) {
        (self.db.clone(), self.name.clone(), self.uuid.clone())
    }

    /// Everything a listing shows of it, to tell whether the listing changed.
    fn listing_key(&self) -> String {
        format!(
            "{}.{} {} {:?} {}",
            self.db, self.name, self.kind, self.uuid, self.options
        )
    }
}

/// `NamespaceNotFound`: listIndexes of a collection dropped or renamed meanwhile.
const NAMESPACE_NOT_FOUND: i32 = 26;

/// How many listings in a row may find new collections before the backup gives up.
const MAX_LISTINGS: usize = 16;

/// Before MongoDB 6.0: the listing after the dump must be the listing before it.
fn check_unchanged(
    first: &HashSet<String>,
    listing: &[Target],
    server_version: &str,
) -> Result<(), BackupError> {
    let last: HashSet<String> = listing.iter().map(Target::listing_key).collect();
    let changed = |key: &String| key.split(' ').next().unwrap_or_default().to_owned();
    let what = if let Some(gone) = first.difference(&last).next() {
        format!("{} was dropped, renamed or modified", changed(gone))
    } else if let Some(new) = last.difference(first).next() {
        format!("{} was created or modified", changed(new))
    } else {
        return Ok(());
    };
    Err(BackupError::DdlNotCaptured {
        what,
        version: server_version.to_owned(),
    })
}

impl BackupBuilder {
    /// Namespaces to take: `db`, `db.*` or `db.coll` (default: all user databases).
    pub fn include<I: IntoIterator<Item = S>, S: Into<String>>(mut self, patterns: I) -> Self {
        self.include.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Namespaces to leave out, same patterns as [`include`](Self::include).
    pub fn exclude<I: IntoIterator<Item = S>, S: Into<String>>(mut self, patterns: I) -> Self {
        self.exclude.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// The backup directory; it must not exist yet.
    pub fn to(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dest = Some(dir.into());
        self
    }

    /// Write `<coll>.bson.gz` (mongodump `--gzip`) instead of `<coll>.bson`.
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// How many collections are dumped at once (at least 1; default 2).
    pub fn parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// How long a collection's read may keep failing (reset, step-down, outage) before the
    /// backup fails (default 30 s). Each resume continues after the last `_id` read.
    pub fn outage_deadline(mut self, deadline: Duration) -> Self {
        self.outage_deadline = deadline;
        self
    }

    /// Documents per cursor batch (default 1000); memory is bounded by one batch per collection.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Whether to capture the changes made during the dump, so a restore reaches one consistent
    /// point in time (default: on; only replica sets and sharded clusters have change streams,
    /// a standalone's backup is consistent per document only and says so in a warning).
    pub fn consistent(mut self, consistent: bool) -> Self {
        self.consistent = consistent;
        self
    }

    /// Sends [`Progress`] events to `sender` (bounded: a slow receiver slows the backup down
    /// rather than queueing events).
    pub fn progress(mut self, sender: tokio::sync::mpsc::Sender<Progress>) -> Self {
        self.progress = ProgressSink::new(sender);
        self
    }

    /// Runs the backup and returns its manifest. On error the temporary directory is removed and
    /// nothing is left at the destination.
    pub async fn run(self) -> Result<Manifest, BackupError> {
        let dest = self.dest.clone().ok_or(BackupError::NoDestination)?;
        if dest.exists() {
            return Err(BackupError::DestinationExists(dest));
        }
        let filter = NamespaceFilter::new(&self.include, &self.exclude)?;
        let temp = temp_dir(&dest);
        let _ = std::fs::remove_dir_all(&temp);
        create_private_dir(&temp)?;
        let result = self.run_into(&filter, &temp).await;
        match result {
            Ok(manifest) => {
                std::fs::rename(&temp, &dest).map_err(|e| BackupError::io("renaming", &temp, e))?;
                tracing::info!(dir = %dest.display(), documents = manifest.documents(), "backup complete");
                Ok(manifest)
            }
            Err(error) => {
                let _ = std::fs::remove_dir_all(&temp);
                tracing::warn!(dir = %dest.display(), %error, "backup failed");
                Err(error)
            }
        }
    }

    async fn run_into(
        &self,
        filter: &NamespaceFilter,
        temp: &Path,
    ) -> Result<Manifest, BackupError> {
        let started_at = now();
        let build_info = self
            .command("backup.buildInfo", "admin", doc! {"buildInfo": 1})
            .await?;
        let server_version = build_info
            .get_str("version")
            .unwrap_or("unknown")
            .to_owned();
        let hello = self
            .command("backup.hello", "admin", doc! {"hello": 1})
            .await?;
        let has_change_streams =
            hello.contains_key("setName") || hello.get_str("msg") == Ok("isdbgrid");
        let ddl_captured = has_change_streams
            && self.consistent
            && crate::changes::reports_ddl(hello.get_i32("maxWireVersion").unwrap_or(0));
        if has_change_streams && self.consistent && !ddl_captured {
            tracing::warn!(
                %server_version,
                "this server's change streams cannot report collection and index changes (MongoDB 6.0+ can): DDL during the dump not captured, so the backup fails if collections or indexes change while it runs"
            );
        }
        // T0, the cluster time before the first read: mongod's replies carry `operationTime`.
        let cluster_time = self.cluster_time().await?;

        let targets = self.targets(filter).await?;
        let mut planned = Vec::with_capacity(targets.len());
        for target in &targets {
            planned.push((
                format!("{}.{}", target.db, target.name),
                self.estimated_count(target).await,
            ));
        }
        self.progress
            .send(Progress::Planned {
                namespaces: planned,
            })
            .await;

        let (end_tx, end_rx) = tokio::sync::oneshot::channel();
        let dumps = async {
            let entries = self
                .dump_until_listing_is_stable(filter, targets, temp, ddl_captured, &server_version)
                .await?;
            // T1, the consistent point: every document read happened before it.
            if let Some(t1) = self.cluster_time().await? {
                let _ = end_tx.send(t1);
            }
            Ok::<_, BackupError>(entries)
        };
        let capture = match cluster_time {
            Some(t0) if self.consistent && has_change_streams => Some(Capture {
                keel: self.keel.clone(),
                filter: filter.clone(),
                from: t0,
                gzip: self.gzip,
                progress: self.progress.clone(),
                catch_up: self.outage_deadline,
                expanded: ddl_captured,
            }),
            _ => {
                if self.consistent {
                    tracing::warn!(
                        "the deployment is not a replica set: no change stream, so the backup is consistent per document but not at one point in time"
                    );
                }
                None
            }
        };
        let (mut entries, changes) = match capture {
            Some(capture) => {
                let (entries, changes) = tokio::try_join!(dumps, capture.run(temp, end_rx))?;
                (entries, Some(changes))
            }
            None => (dumps.await?, None),
        };
        entries.sort_by(|a, b| (&a.db, &a.collection).cmp(&(&b.db, &b.collection)));

        let prelude = Prelude {
            server_version: server_version.clone(),
            tool_version: TOOL_VERSION.to_owned(),
        };
        let prelude_text = serde_json::to_string(&prelude).unwrap_or_default();
        let prelude_file = write_small(&temp.join(PRELUDE_FILE), prelude_text.as_bytes())?;
        let manifest = Manifest {
            format: 1,
            tool_version: TOOL_VERSION.to_owned(),
            server_version,
            started_at,
            finished_at: now(),
            cluster_time: cluster_time.map(|ts| (ts.time, ts.increment)),
            gzip: self.gzip,
            prelude_sha256: prelude_file.sha256,
            namespaces: entries,
            changes,
            ddl_captured,
            complete: true,
            last_drill: None,
            last_good_drill: None,
        };
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| BackupError::BadFile {
            path: temp.join(MANIFEST_FILE),
            what: "manifest",
            message: e.to_string(),
        })?;
        write_small(&temp.join(MANIFEST_FILE), text.as_bytes())?;
        Ok(manifest)
    }

    /// Dumps `targets`, then lists the namespaces again and dumps those that appeared meanwhile
    /// (created, or renamed from elsewhere, during the dump), until a listing finds nothing new.
    /// A dump whose collection is not in the last listing under the same name and UUID (dropped
    /// or renamed while or after it was read) is left out: the captured changes hold what became
    /// of it, and its documents are in the dump of its new name. Without DDL in the change
    /// stream (before MongoDB 6.0) any difference between the listings, or in a collection's
    /// indexes, fails the backup instead.
    async fn dump_until_listing_is_stable(
        &self,
        filter: &NamespaceFilter,
        targets: Vec<Target>,
        temp: &Path,
        ddl_captured: bool,
        server_version: &str,
    ) -> Result<Vec<NamespaceEntry>, BackupError> {
        let first_listing: HashSet<String> = targets.iter().map(Target::listing_key).collect();
        let mut dumped: HashSet<(String, String, Option<String>)> = HashSet::new();
        let mut entries: Vec<(NamespaceEntry, Option<String>)> = Vec::new();
        let mut pending = targets;
        let mut rounds = 0;
        let listing = loop {
            for target in &pending {
                dumped.insert(target.key());
            }
            let batch: Vec<(NamespaceEntry, Option<String>)> = futures_util::stream::iter(pending)
                .map(|target| self.dump(target, temp))
                .buffer_unordered(self.parallelism)
                .try_filter_map(|e| async move { Ok(e) })
                .try_collect()
                .await?;
            entries.extend(batch);
            let listing = self.targets(filter).await?;
            if !ddl_captured {
                check_unchanged(&first_listing, &listing, server_version)?;
                break listing;
            }
            pending = listing
                .iter()
                .filter(|t| !dumped.contains(&t.key()))
                .cloned()
                .collect();
            if pending.is_empty() {
                break listing;
            }
            rounds += 1;
            if rounds > MAX_LISTINGS {
                return Err(BackupError::NamespacesKeptChanging { rounds });
            }
            tracing::info!(
                namespaces = pending.len(),
                "collections appeared during the dump; dumping them too"
            );
        };
        let listed: HashSet<_> = listing.iter().map(Target::key).collect();
        let mut kept = Vec::with_capacity(entries.len());
        for (entry, uuid) in entries {
            if listed.contains(&(entry.db.clone(), entry.collection.clone(), uuid)) {
                kept.push(entry);
                continue;
            }
            tracing::info!(db = %entry.db, collection = %entry.collection, "a collection was dropped or renamed during the dump: its dump is left out and the captured changes replay what became of it");
            for file in entry.bson_file.iter().chain([&entry.metadata_file]) {
                let path = temp.join(file);
                std::fs::remove_file(&path).map_err(|e| BackupError::io("removing", &path, e))?;
            }
        }
        if !ddl_captured {
            for entry in &kept {
                self.check_indexes_unchanged(entry, server_version).await?;
            }
        }
        Ok(kept)
    }

    /// Before MongoDB 6.0: an index created or dropped during the dump fails the backup.
    async fn check_indexes_unchanged(
        &self,
        entry: &NamespaceEntry,
        server_version: &str,
    ) -> Result<(), BackupError> {
        if entry.collection_type == "view" {
            return Ok(());
        }
        let target = Target {
            db: entry.db.clone(),
            name: entry.collection.clone(),
            kind: entry.collection_type.clone(),
            options: Document::new(),
            uuid: None,
        };
        let now = self.indexes(&target).await?.unwrap_or_default();
        if crate::metadata::indexes_digest(&now) != entry.indexes_digest {
            return Err(BackupError::DdlNotCaptured {
                what: format!("the indexes of {}.{} changed", entry.db, entry.collection),
                version: server_version.to_owned(),
            });
        }
        Ok(())
    }

    /// The deployment's current cluster time (`operationTime` of a `ping`), `None` on a server
    /// that reports none.
    async fn cluster_time(&self) -> Result<Option<mongodb::bson::Timestamp>, BackupError> {
        let ping = self
            .command("backup.ping", "admin", doc! {"ping": 1})
            .await?;
        Ok(match ping.get("operationTime") {
            Some(Bson::Timestamp(ts)) => Some(*ts),
            _ => None,
        })
    }

    /// `estimatedDocumentCount` for the progress display (0 for a view or on failure: the
    /// estimate only feeds the ETA).
    async fn estimated_count(&self, target: &Target) -> u64 {
        if target.kind == "view" {
            return 0;
        }
        self.keel
            .client()
            .current()
            .database(&target.db)
            .collection::<Document>(&target.name)
            .estimated_document_count()
            .await
            .unwrap_or(0)
    }

    async fn command(
        &self,
        name: &'static str,
        db: &'static str,
        command: Document,
    ) -> Result<Document, BackupError> {
        let op = Operation::new(
            name,
            OperationKind::Command { idempotent: true },
            move |client: mongodb::Client| {
                let command = command.clone();
                async move { client.database(db).run_command(command).await }
            },
        );
        Ok(self.keel.run(op).await?)
    }

    /// Every collection and view the filter takes, from `listDatabases` and `listCollections`.
    async fn targets(&self, filter: &NamespaceFilter) -> Result<Vec<Target>, BackupError> {
        let list = Operation::read(
            "backup.listDatabases",
            |client: mongodb::Client| async move { client.list_database_names().await },
        );
        let mut targets = Vec::new();
        for db in self.keel.run(list).await? {
            if !filter.wants_database(&db) {
                continue;
            }
            let name = db.clone();
            let op = Operation::read("backup.listCollections", move |client: mongodb::Client| {
                let name = name.clone();
                async move {
                    let cursor = client
                        .database(&name)
                        .run_cursor_command(doc! {"listCollections": 1})
                        .await?;
                    cursor.try_collect::<Vec<Document>>().await
                }
            });
            for spec in self.keel.run(op).await? {
                let Ok(coll) = spec.get_str("name") else {
                    continue;
                };
                if !filter.wants(&db, coll) {
                    continue;
                }
                let uuid = spec
                    .get_document("info")
                    .ok()
                    .and_then(|info| match info.get("uuid") {
                        Some(Bson::Binary(b)) => Some(hex::encode(&b.bytes)),
                        _ => None,
                    });
                targets.push(Target {
                    db: db.clone(),
                    name: coll.to_owned(),
                    kind: spec.get_str("type").unwrap_or("collection").to_owned(),
                    options: spec.get_document("options").cloned().unwrap_or_default(),
                    uuid,
                });
            }
        }
        Ok(targets)
    }

    /// One namespace: metadata, then (unless a view) every document in `_id` order; with the
    /// UUID listed for it. `None` when the collection was gone before its indexes were read.
    async fn dump(
        &self,
        target: Target,
        temp: &Path,
    ) -> Result<Option<(NamespaceEntry, Option<String>)>, BackupError> {
        let dir = temp.join(&target.db);
        if !dir.exists() {
            create_private_dir(&dir)?;
        }
        let stem = file_stem(&target.name);
        let is_view = target.kind == "view";
        let indexes = if is_view {
            Vec::new()
        } else {
            match self.indexes(&target).await? {
                Some(indexes) => indexes,
                None => return Ok(None),
            }
        };
        let indexes_digest = crate::metadata::indexes_digest(&indexes);
        let metadata = CollectionMetadata {
            options: target.options.clone(),
            indexes,
            uuid: target.uuid.clone(),
            collection_name: target.name.clone(),
            collection_type: target.kind.clone(),
        };
        let metadata_name = format!("{}/{stem}.metadata.json", target.db);
        let metadata_file = write_small(&temp.join(&metadata_name), metadata.to_json().as_bytes())?;

        let (bson_file, bson_sha256, digest, bytes) = if is_view {
            (None, None, DocumentsDigest::default(), 0)
        } else {
            let ext = if self.gzip { "bson.gz" } else { "bson" };
            let name = format!("{}/{stem}.{ext}", target.db);
            let (digest, bytes, sha) = self.dump_documents(&target, temp.join(&name)).await?;
            (Some(name), Some(sha), digest, bytes)
        };
        tracing::info!(db = %target.db, collection = %target.name, documents = digest.count(), bytes, "namespace dumped");
        self.progress
            .send(Progress::Namespace {
                namespace: format!("{}.{}", target.db, target.name),
                documents: digest.count(),
                bytes,
                done: true,
            })
            .await;
        let uuid = target.uuid.clone();
        Ok(Some((
            NamespaceEntry {
                db: target.db,
                collection: target.name,
                collection_type: target.kind,
                bson_file,
                metadata_file: metadata_name,
                count: digest.count(),
                bytes,
                bson_sha256,
                metadata_sha256: metadata_file.sha256,
                documents_digest: digest.hex(),
                indexes_digest,
            },
            uuid,
        )))
    }

    /// The collection's index specs; `None` if it no longer exists (NamespaceNotFound, 26).
    async fn indexes(&self, target: &Target) -> Result<Option<Vec<Document>>, BackupError> {
        let (db, coll) = (target.db.clone(), target.name.clone());
        let op = Operation::read("backup.listIndexes", move |client: mongodb::Client| {
            let (db, coll) = (db.clone(), coll.clone());
            async move {
                let cursor = client
                    .database(&db)
                    .run_cursor_command(doc! {"listIndexes": coll})
                    .await?;
                cursor.try_collect::<Vec<Document>>().await
            }
        });
        match self.keel.run(op).await {
            Ok(indexes) => Ok(Some(indexes)),
            Err(e) if e.code() == Some(NAMESPACE_NOT_FOUND) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams the collection into `path` one cursor batch at a time. A failed cursor (reset,
    /// step-down) is reopened after the last `_id` written, until `outage_deadline` has passed
    /// since the first failure in a row.
    async fn dump_documents(
        &self,
        target: &Target,
        path: PathBuf,
    ) -> Result<(DocumentsDigest, u64, String), BackupError> {
        let namespace = format!("{}.{}", target.db, target.name);
        let writer = DocumentsWriter::start(HashedFile::create(path, self.gzip)?);
        let batch_size = self.batch_size as usize;
        let mut batch: Vec<RawDocumentBuf> = Vec::with_capacity(batch_size);
        let mut count = 0u64;
        let mut bytes = 0u64;
        let mut last_id: Option<Bson> = None;
        let mut failing_since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(50);
        'reopen: loop {
            let collection = self
                .keel
                .client()
                .current()
                .database(&target.db)
                .collection::<RawDocumentBuf>(&target.name);
            let filter = match &last_id {
                Some(id) => doc! {"_id": {"$gt": id.clone()}},
                None => doc! {},
            };
            let opened = collection
                .find(filter)
                .sort(doc! {"_id": 1})
                .batch_size(self.batch_size)
                .await;
            let mut cursor = match opened {
                Ok(cursor) => cursor,
                Err(e) => {
                    self.wait_or_fail(&namespace, e, &mut failing_since, &mut backoff)
                        .await?;
                    continue 'reopen;
                }
            };
            loop {
                match cursor.try_next().await {
                    Ok(Some(document)) => {
                        bytes += document.as_bytes().len() as u64;
                        count += 1;
                        last_id = document
                            .get("_id")
                            .ok()
                            .flatten()
                            .and_then(|id| Bson::try_from(id.to_raw_bson()).ok());
                        batch.push(document);
                        if batch.len() == batch_size {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                            if !writer.send(full).await {
                                break 'reopen;
                            }
                            self.progress
                                .send(Progress::Namespace {
                                    namespace: namespace.clone(),
                                    documents: count,
                                    bytes,
                                    done: false,
                                })
                                .await;
                        }
                        failing_since = None;
                        backoff = Duration::from_millis(50);
                    }
                    Ok(None) => break 'reopen,
                    Err(e) => {
                        self.wait_or_fail(&namespace, e, &mut failing_since, &mut backoff)
                            .await?;
                        tracing::info!(%namespace, documents = count, "resuming the dump after the last _id read");
                        continue 'reopen;
                    }
                }
            }
        }
        // A writer that stopped early returns its error here.
        writer.send(batch).await;
        let (digest, written_bytes, sha256) = writer.finish().await?;
        debug_assert_eq!((digest.count(), written_bytes), (count, bytes));
        Ok((digest, bytes, sha256))
    }

    async fn wait_or_fail(
        &self,
        namespace: &str,
        error: mongodb::error::Error,
        failing_since: &mut Option<Instant>,
        backoff: &mut Duration,
    ) -> Result<(), BackupError> {
        let error = keel_core::Error::from(error);
        let since = *failing_since.get_or_insert_with(Instant::now);
        if !error.is_retryable(OperationKind::Read) {
            return Err(BackupError::Database(error));
        }
        if since.elapsed() >= self.outage_deadline {
            return Err(BackupError::OutageDeadline {
                namespace: namespace.to_owned(),
                seconds: self.outage_deadline.as_secs(),
                message: error.to_string(),
            });
        }
        tracing::warn!(%namespace, %error, "reading failed; retrying after the last _id read");
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(Duration::from_secs(2));
        Ok(())
    }
}

fn temp_dir(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    dest.with_file_name(format!(".{name}.partial"))
}

fn create_private_dir(dir: &Path) -> Result<(), BackupError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| BackupError::io("creating the directory", dir, e))
}

pub(crate) fn now() -> String {
    mongodb::bson::DateTime::now()
        .try_to_rfc3339_string()
        .unwrap_or_default()
}
