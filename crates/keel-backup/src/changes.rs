//! The consistent point in time: every change from the cluster time read before the first
//! document (T0) until the cluster time read after the last collection was dumped (T1),
//! captured from a cluster change stream (`startAtOperationTime: T0`) while the dump runs and
//! stored in `changes.bson`; a restore replays them, so the restored data is the deployment as
//! it was at T1.
//!
//! Why not mongodump's `oplog.bson`: mongodump `--oplog` reads `local.oplog.rs` directly
//! (mongo-tools `mongodump/oplog_dump.go`, `DumpOplogBetweenTimestamps`: `ts` from start to end)
//! and checks afterwards that the oldest entry is not newer than the start
//! (`checkOplogTimestampExists`). That needs read access to `local` (not granted on Atlas) and
//! stores raw oplog entries, which `mongorestore --oplogReplay` applies with `applyOps`. A change
//! stream needs only `changeStream` privileges, reports a lost history itself
//! (`ChangeStreamHistoryLost`, 286), and its events are not oplog entries, so they go into a file
//! of their own name: `mongorestore --oplogReplay` never mistakes them for an oplog.

use std::path::Path;
use std::time::Duration;

use futures_util::FutureExt as _;
use mongodb::bson::{Bson, Document, RawDocumentBuf, Timestamp, doc};
use mongokeel::Keel;
use serde::{Deserialize, Serialize};

use crate::BackupError;
use crate::files::HashedFile;
use crate::namespace::NamespaceFilter;
use crate::progress::{Progress, ProgressSink};

/// The name of the captured changes' file at the backup's root (`.gz` added with gzip).
pub const CHANGES_FILE: &str = "changes.bson";

/// How long one `getMore` of the capture waits for new changes before it checks whether the
/// dump has finished.
const POLL: Duration = Duration::from_millis(200);

/// The captured changes, as the manifest records them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangesEntry {
    /// The file relative to the backup root.
    pub file: String,
    /// How many change events it holds.
    pub count: u64,
    /// SHA-256 of the file as written.
    pub sha256: String,
    /// The cluster time the capture started at (inclusive), as `(t, i)`.
    pub from: (u32, u32),
    /// The consistent point: the cluster time after the last collection was dumped (inclusive).
    pub to: (u32, u32),
}

/// The cluster time a resume token stands for. Every resume token mongod issues (and the
/// testkit's) is a KeyString whose first value is the event's cluster time: the type byte 0x82
/// (`CType::kTimestamp`, 130) and the 8-byte big-endian timestamp (as decoded by MongoDB's Kafka
/// connector `ResumeTokenUtils` and Debezium's `ResumeTokens`). `None` for another shape.
pub(crate) fn token_time(token: &Bson) -> Option<Timestamp> {
    let data = match token {
        Bson::Document(d) => d.get_str("_data").ok()?,
        _ => return None,
    };
    if data.len() < 18 || !data[..2].eq_ignore_ascii_case("82") {
        return None;
    }
    let value = u64::from_str_radix(&data[2..18], 16).ok()?;
    Some(Timestamp {
        time: (value >> 32) as u32,
        increment: value as u32,
    })
}

fn key(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

/// A capture running beside the dump.
pub(crate) struct Capture {
    pub(crate) keel: Keel,
    pub(crate) filter: NamespaceFilter,
    pub(crate) from: Timestamp,
    pub(crate) gzip: bool,
    pub(crate) progress: ProgressSink,
    /// How long the capture may take to catch up with T1 once the dump is done.
    pub(crate) catch_up: Duration,
    /// Ask for DDL events and collection UUIDs (`showExpandedEvents`, MongoDB 6.0+).
    pub(crate) expanded: bool,
}

/// MongoDB 6.0's wire version, the first whose change streams take `showExpandedEvents`.
const EXPANDED_EVENTS_WIRE_VERSION: i32 = 17;

/// Whether a server of this `maxWireVersion` reports DDL in change streams.
pub(crate) fn reports_ddl(max_wire_version: i32) -> bool {
    max_wire_version >= EXPANDED_EVENTS_WIRE_VERSION
}

impl Capture {
    /// Captures changes into `<root>/changes.bson[.gz]` until `end` yields T1 and every change
    /// up to T1 is stored. A lost history (286) is [`BackupError::ChangeHistoryLost`].
    pub(crate) async fn run(
        self,
        root: &Path,
        end: tokio::sync::oneshot::Receiver<Timestamp>,
    ) -> Result<ChangesEntry, BackupError> {
        let file_name = if self.gzip {
            format!("{CHANGES_FILE}.gz")
        } else {
            CHANGES_FILE.to_owned()
        };
        let mut file = HashedFile::create(root.join(&file_name), self.gzip)?;
        let mut stream = self
            .keel
            .client()
            .current()
            .watch()
            .start_at_operation_time(self.from)
            .show_expanded_events(self.expanded)
            .max_await_time(POLL)
            .await
            .map_err(|e| self.failed(e))?
            .with_type::<RawDocumentBuf>();
        let mut end = end.fuse();
        let mut until: Option<(Timestamp, tokio::time::Instant)> = None;
        let mut count = 0u64;
        loop {
            if until.is_none()
                && let Some(Ok(t1)) = (&mut end).now_or_never()
            {
                until = Some((t1, tokio::time::Instant::now()));
            }
            let next = stream.next_if_any().await.map_err(|e| self.failed(e))?;
            match next {
                Some(event) => {
                    let time = match event.get("clusterTime") {
                        Ok(Some(mongodb::bson::RawBsonRef::Timestamp(ts))) => ts,
                        _ => continue,
                    };
                    if let Some((t1, _)) = until
                        && key(time) > key(t1)
                    {
                        break;
                    }
                    if self.wanted(&event) {
                        file.write_all(event.as_bytes())?;
                        count += 1;
                        if count.is_multiple_of(100) {
                            self.progress
                                .send(Progress::Changes { count, done: false })
                                .await;
                        }
                    }
                }
                None => {
                    let Some((t1, since)) = until else { continue };
                    // An empty batch asked for after T1 was known: the stream has returned
                    // everything it had. Its postBatchResumeToken says how far that is; a token
                    // of another shape is trusted to be caught up, as the batch was empty.
                    let reached = stream
                        .resume_token()
                        .and_then(|t| mongodb::bson::to_bson(&t).ok())
                        .and_then(|t| token_time(&t))
                        .is_none_or(|ts| key(ts) >= key(t1));
                    if reached {
                        break;
                    }
                    if since.elapsed() > self.catch_up {
                        return Err(BackupError::ChangeCapture(format!(
                            "the change stream did not reach the end of the dump (cluster time {}:{}) within {} s",
                            t1.time,
                            t1.increment,
                            self.catch_up.as_secs()
                        )));
                    }
                }
            }
        }
        let written = file.finish()?;
        self.progress
            .send(Progress::Changes { count, done: true })
            .await;
        let (t1, _) = until.unwrap_or((self.from, tokio::time::Instant::now()));
        tracing::info!(changes = count, "changes during the dump captured");
        Ok(ChangesEntry {
            file: file_name,
            count,
            sha256: written.sha256,
            from: (self.from.time, self.from.increment),
            to: (t1.time, t1.increment),
        })
    }

    /// Only changes to namespaces the backup takes are kept.
    fn wanted(&self, event: &RawDocumentBuf) -> bool {
        let Ok(ns) = event.get_document("ns") else {
            return false;
        };
        let db = ns.get_str("db").unwrap_or_default();
        let source = match ns.get_str("coll") {
            Ok(coll) => self.filter.wants(db, coll),
            // dropDatabase has no `coll`.
            Err(_) => self.filter.wants_database(db),
        };
        // A rename into the backup's namespaces matters as much as one out of them.
        source
            || event.get_document("to").is_ok_and(|to| {
                self.filter.wants(
                    to.get_str("db").unwrap_or_default(),
                    to.get_str("coll").unwrap_or_default(),
                )
            })
    }

    fn failed(&self, error: mongodb::error::Error) -> BackupError {
        let code = match error.kind.as_ref() {
            mongodb::error::ErrorKind::Command(c) => Some(c.code),
            _ => None,
        };
        let error = keel_core::Error::from(error);
        if code == Some(286) {
            BackupError::ChangeHistoryLost {
                from: (self.from.time, self.from.increment),
                message: error.to_string(),
            }
        } else {
            BackupError::ChangeCapture(error.to_string())
        }
    }
}

/// What one captured change does to a restored collection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Replay {
    /// Insert or replace the whole document (upsert by `_id`).
    Put { id: Bson, document: Document },
    /// Apply `updateDescription`: truncations first, then `$set`/`$unset`.
    Update {
        id: Bson,
        truncate: Option<Document>,
        update: Option<Document>,
    },
    /// Delete the document.
    Delete { id: Bson },
    /// Drop the collection.
    Drop,
    /// Drop the whole database.
    DropDatabase,
    /// A collection or index change (expanded events, MongoDB 6.0+).
    Ddl(crate::ddl::DdlChange),
    /// An event a restore does not apply (its operation type).
    Skip(String),
}

/// The event's `collectionUUID` (expanded events only), as the metadata files write UUIDs.
pub(crate) fn collection_uuid(event: &Document) -> Option<String> {
    match event.get("collectionUUID") {
        Some(Bson::Binary(b)) => Some(hex::encode(&b.bytes)),
        _ => None,
    }
}

/// A change event as the restore applies it: `(db, collection or "", replay)`.
pub(crate) fn parse_event(event: &Document) -> Result<(String, String, Replay), String> {
    let ns = event
        .get_document("ns")
        .map_err(|_| "a change event has no `ns`".to_owned())?;
    let db = ns.get_str("db").unwrap_or_default().to_owned();
    let coll = ns.get_str("coll").unwrap_or_default().to_owned();
    let kind = event.get_str("operationType").unwrap_or_default();
    let id = || -> Result<Bson, String> {
        event
            .get_document("documentKey")
            .ok()
            .and_then(|k| k.get("_id").cloned())
            .ok_or_else(|| format!("a `{kind}` event on {db}.{coll} has no documentKey._id"))
    };
    let replay = match kind {
        "insert" | "replace" => Replay::Put {
            id: id()?,
            document: event
                .get_document("fullDocument")
                .map_err(|_| format!("a `{kind}` event on {db}.{coll} has no fullDocument"))?
                .clone(),
        },
        "update" => {
            let description = event
                .get_document("updateDescription")
                .map_err(|_| format!("an update on {db}.{coll} has no updateDescription"))?;
            let mut set = description
                .get_document("updatedFields")
                .cloned()
                .unwrap_or_default();
            let mut unset = Document::new();
            if let Ok(removed) = description.get_array("removedFields") {
                for field in removed.iter().filter_map(Bson::as_str) {
                    unset.insert(field, "");
                }
            }
            let mut truncate = Document::new();
            if let Ok(truncated) = description.get_array("truncatedArrays") {
                for t in truncated.iter().filter_map(Bson::as_document) {
                    if let (Ok(field), Some(size)) = (t.get_str("field"), t.get("newSize")) {
                        truncate.insert(field, doc! {"$each": [], "$slice": size.clone()});
                    }
                }
            }
            let mut update = Document::new();
            if !set.is_empty() {
                update.insert("$set", std::mem::take(&mut set));
            }
            if !unset.is_empty() {
                update.insert("$unset", unset);
            }
            Replay::Update {
                id: id()?,
                truncate: (!truncate.is_empty()).then(|| doc! {"$push": truncate}),
                update: (!update.is_empty()).then_some(update),
            }
        }
        "delete" => Replay::Delete { id: id()? },
        "drop" => Replay::Drop,
        "dropDatabase" => Replay::DropDatabase,
        other => match crate::ddl::DdlChange::parse(other, event)? {
            Some(change) => Replay::Ddl(change),
            None => Replay::Skip(other.to_owned()),
        },
    };
    Ok((db, coll, replay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_time_reads_mongod_and_testkit_tokens() {
        // A mongod 5.0 token (from MongoDB's resume-token decoder's example): t 0x612E8513, i 1.
        let mongod = Bson::Document(doc! {"_data": "82612E8513000000012B022C0100296E5A1004A5"});
        assert_eq!(
            token_time(&mongod),
            Some(Timestamp {
                time: 0x612E_8513,
                increment: 1
            })
        );
        let testkit = Bson::Document(doc! {"_data": "82000000050000000703"});
        assert_eq!(
            token_time(&testkit),
            Some(Timestamp {
                time: 5,
                increment: 7
            })
        );
        assert_eq!(token_time(&Bson::Document(doc! {"_data": "01"})), None);
        assert_eq!(token_time(&Bson::Int32(1)), None);
    }

    #[test]
    fn events_become_idempotent_writes() {
        let update = doc! {
            "operationType": "update", "ns": {"db": "app", "coll": "items"},
            "documentKey": {"_id": 3},
            "updateDescription": {
                "updatedFields": {"a.b": 1}, "removedFields": ["c"],
                "truncatedArrays": [{"field": "arr", "newSize": 2}],
            },
        };
        let (db, coll, replay) = parse_event(&update).unwrap();
        assert_eq!((db.as_str(), coll.as_str()), ("app", "items"));
        assert_eq!(
            replay,
            Replay::Update {
                id: Bson::Int32(3),
                truncate: Some(doc! {"$push": {"arr": {"$each": [], "$slice": 2}}}),
                update: Some(doc! {"$set": {"a.b": 1}, "$unset": {"c": ""}}),
            }
        );
        let insert = doc! {
            "operationType": "insert", "ns": {"db": "app", "coll": "items"},
            "documentKey": {"_id": 4}, "fullDocument": {"_id": 4, "x": 1},
        };
        assert!(matches!(
            parse_event(&insert).unwrap().2,
            Replay::Put { .. }
        ));
        let broken = doc! {"operationType": "insert", "ns": {"db": "app", "coll": "items"}};
        assert!(parse_event(&broken).unwrap_err().contains("documentKey"));
    }
}
