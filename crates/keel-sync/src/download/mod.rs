//! Download: server changes to subscribed documents into the local replica, through a
//! keel-change-streams consumer per subscribed collection (its checkpoint in the sync store),
//! or by polling when the server has no change streams.

mod checkpoint;
pub(crate) mod read;
mod stream;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use mongodb::bson::{Bson, Document};

use crate::{
    client::Inner,
    hlc::wall_ms,
    operation::DocKey,
    server_record::ServerDoc,
    store::{META_LAST_SYNC, Mutation},
};

/// How a subscribed collection's server changes reach the local replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownloadMode {
    /// A change stream (keel-change-streams) with its checkpoint in the sync store: changes
    /// arrive as they happen, and a restart resumes from the checkpoint.
    ChangeStream,
    /// A full read of the subscription every poll interval and after every sync round: the
    /// server has no change streams (a standalone), or they were turned off in the builder.
    Polling,
}

/// What the download of one subscribed collection is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadInfo {
    /// The collection, as `db.coll`.
    pub namespace: String,
    /// Change stream or polling.
    pub mode: DownloadMode,
    /// Full reads of the subscription so far: one per poll, one before a change stream starts
    /// without a checkpoint, one after a gap (history lost, a dropped collection).
    pub full_reads: u64,
    /// Change events applied so far.
    pub events: u64,
    /// When the change stream's checkpoint was last stored (this process's clock).
    pub checkpointed_at: Option<std::time::SystemTime>,
    /// Why the collection is polled, as a sentence (`None` while on a change stream).
    pub polling_because: Option<String>,
}

pub(crate) fn split_ns(ns: &str) -> (String, String) {
    match ns.split_once('.') {
        Some((db, coll)) => (db.to_owned(), coll.to_owned()),
        None => (ns.to_owned(), String::new()),
    }
}

/// Which replica documents of the namespace a set of server documents is the whole truth for.
pub(crate) enum Scope<'a> {
    /// Every document of the subscription (a full read): the others left it.
    All,
    /// Only these documents: those not in the answer were deleted or left the subscription.
    Only(&'a HashSet<DocKey>),
}

/// Puts server documents into the replica (only ever forward: a higher `_sync.v`), removes the
/// documents of `scope` the server no longer has, rebases the view, and returns once durable.
pub(crate) async fn apply(
    inner: &Inner,
    ns: &str,
    docs: Vec<Document>,
    scope: Scope<'_>,
) -> crate::Result<()> {
    let durable = {
        let mut state = inner.lock();
        let mut mutations = Vec::new();
        let mut seen = HashSet::new();
        for doc in docs {
            let Some(id) = doc.get("_id").cloned() else {
                continue;
            };
            let Ok(key) = DocKey::new(ns, &id) else {
                continue;
            };
            let server = ServerDoc::split(doc);
            seen.insert(key.clone());
            let newer = state.replica.get(&key).is_none_or(|known| {
                server.record.v > known.record.v
                    || (!server.tracked && known.fields != server.fields)
            });
            if newer {
                mutations.push(Mutation::PutReplica(key.to_bytes(), server.to_bytes()?));
                state
                    .hlc
                    .observe(u64::try_from(server.record.hlc).unwrap_or(0));
                state.replica.insert(key.clone(), server);
                inner.view_changed(&mut state, &key);
            }
        }
        let gone: Vec<DocKey> = match scope {
            Scope::All => state
                .replica
                .keys()
                .filter(|key| key.ns == ns && !seen.contains(*key))
                .cloned()
                .collect(),
            Scope::Only(keys) => keys
                .iter()
                .filter(|key| !seen.contains(*key) && state.replica.contains_key(*key))
                .cloned()
                .collect(),
        };
        for key in gone {
            state.replica.remove(&key);
            mutations.push(Mutation::RemoveReplica(key.to_bytes()));
            inner.view_changed(&mut state, &key);
        }
        let now = wall_ms();
        state.last_sync_ms = i64::try_from(now).ok();
        mutations.push(Mutation::PutMeta(
            META_LAST_SYNC,
            now.to_be_bytes().to_vec(),
        ));
        inner.store.submit(mutations)?
    };
    durable.wait().await
}

/// A full read of one subscription into the replica. The outer error is the server's; the
/// inner one the store's (the documents were read but not stored).
pub(crate) async fn full_read(
    inner: &Inner,
    ns: &str,
    filter: Document,
) -> Result<crate::Result<()>, keel_core::Error> {
    let docs = read::subscription(&inner.keel, ns, filter).await?;
    inner.note_download(ns, |info| info.full_reads += 1);
    Ok(apply(inner, ns, docs, Scope::All).await)
}

/// [`full_read`] for the background task: a store failure is logged (the next round reads
/// again).
async fn full_read_logged(
    inner: &Inner,
    ns: &str,
    filter: Document,
) -> Result<(), keel_core::Error> {
    if let Err(e) = full_read(inner, ns, filter).await? {
        tracing::warn!(error = %e, "keel-sync: downloaded documents were not stored");
    }
    Ok(())
}

/// The download side of the background task: one change-stream consumer per subscribed
/// collection, or polling for the collections whose server has none.
#[derive(Default)]
pub(crate) struct Downloads {
    streams: HashMap<String, stream::Stream>,
    /// Collections whose server refused a change stream: polled from then on, with the reason.
    polling: HashMap<String, String>,
}

impl Downloads {
    /// One download round: starts (or restarts) the streams, polls the collections without
    /// one, and reads again in full what a stream could not follow (a gap).
    pub(crate) async fn round(&mut self, inner: &Arc<Inner>) -> Result<(), keel_core::Error> {
        let subscriptions: Vec<(String, Document)> = inner
            .subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(ns, filter)| (ns.clone(), filter.clone()))
            .collect();
        let resync: HashSet<String> = std::mem::take(
            &mut *inner
                .resync
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (ns, filter) in subscriptions {
            let finished = self
                .streams
                .get(&ns)
                .is_some_and(|running| running.filter != filter || running.stopped());
            if finished
                && let Some(running) = self.streams.remove(&ns)
                && let Err(error) = running.finish().await
            {
                if stream::refuses_change_streams(&error) {
                    tracing::info!(
                        namespace = %ns,
                        "keel-sync: the server refuses change streams; polling this collection instead"
                    );
                    self.polling.insert(
                        ns.clone(),
                        format!("the server refused a change stream: {error}"),
                    );
                } else {
                    tracing::warn!(namespace = %ns, %error, "keel-sync: the change stream stopped; starting it again from its checkpoint");
                }
            }
            if self.streams.contains_key(&ns) {
                if resync.contains(&ns) {
                    full_read_logged(inner, &ns, filter).await?;
                }
                continue;
            }
            if !inner.change_streams {
                self.polling.insert(
                    ns.clone(),
                    "change streams are turned off in the client's builder".to_owned(),
                );
            }
            if !self.polling.contains_key(&ns) {
                match stream::Stream::start(inner, &ns, &filter).await? {
                    Some(running) => {
                        inner.note_download(&ns, |info| {
                            info.mode = DownloadMode::ChangeStream;
                            info.polling_because = None;
                        });
                        self.streams.insert(ns, running);
                        continue;
                    }
                    None => {
                        self.polling.insert(
                            ns.clone(),
                            "the server reports no operation time, so it has no change streams \
                             (a standalone server)"
                                .to_owned(),
                        );
                    }
                }
            }
            let reason = self.polling.get(&ns).cloned();
            inner.note_download(&ns, |info| {
                info.mode = DownloadMode::Polling;
                info.polling_because = reason;
            });
            full_read_logged(inner, &ns, filter).await?;
        }
        Ok(())
    }

    /// Whether some subscribed collection is polled (the task then wakes every poll interval).
    pub(crate) fn polls(&self, inner: &Inner) -> bool {
        let subscriptions = inner
            .subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        subscriptions
            .keys()
            .any(|ns| !self.streams.contains_key(ns))
    }
}

/// The `_id`s named by change events, as document keys and values.
pub(crate) fn event_ids(ns: &str, keys: &[Document]) -> (HashSet<DocKey>, Vec<Bson>) {
    let mut set = HashSet::new();
    let mut ids = Vec::new();
    for key in keys {
        if let Some(id) = key.get("_id")
            && let Ok(doc_key) = DocKey::new(ns, id)
            && set.insert(doc_key)
        {
            ids.push(id.clone());
        }
    }
    (set, ids)
}
