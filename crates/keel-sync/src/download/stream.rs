//! One subscribed collection followed by a keel-change-streams consumer: every batch of events
//! names documents, which are read again (matching the subscription filter) and put into the
//! replica before the consumer commits its checkpoint to the sync store.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use keel_change_streams::{
    ChangeConsumer, ChangeEvent, ConsumerStatus, FailurePolicy, HandlerRetry, HistoryLostPolicy,
    InvalidatePolicy, Notice, RunningConsumer, StartFrom,
};
use mongodb::bson::{Document, doc};

use super::{Scope, apply, checkpoint::SyncCheckpointStore, event_ids, full_read, read};
use crate::client::Inner;

/// Server error codes that mean "this server has no change streams", where polling is the
/// only way: 40573, `$changeStream` on a standalone ("The $changeStream stage is only supported
/// on replica sets", mongod's `document_source_change_stream.cpp`; keel-testkit's
/// `CHANGE_STREAM_NOT_SUPPORTED`); 40324, an unrecognized pipeline stage (servers and
/// emulators without `$changeStream`); 115, `CommandNotSupported`.
const NO_CHANGE_STREAMS: [i32; 3] = [40573, 40324, 115];

pub(crate) fn refuses_change_streams(error: &keel_core::Error) -> bool {
    error
        .code()
        .is_some_and(|code| NO_CHANGE_STREAMS.contains(&code))
}

/// A running consumer for one subscription.
pub(crate) struct Stream {
    pub(crate) filter: Document,
    consumer: RunningConsumer,
    status: tokio::sync::watch::Receiver<ConsumerStatus>,
}

impl Stream {
    /// Starts following `ns`: from its checkpoint when the store has one for this filter, else
    /// from the server's operation time before a full read (so nothing changed during the read
    /// is missed; what the stream repeats is applied only when newer). `None`: the server gives
    /// no operation time, so it has no change streams (a standalone).
    pub(crate) async fn start(
        inner: &Arc<Inner>,
        ns: &str,
        filter: &Document,
    ) -> Result<Option<Self>, keel_core::Error> {
        let store = SyncCheckpointStore::new(Arc::downgrade(inner), ns, filter.clone());
        let start_from = if store.stored()?.is_some() {
            // A stored checkpoint wins over the start point.
            StartFrom::Now
        } else {
            let Some(at) = read::operation_time(&inner.keel, ns).await? else {
                return Ok(None);
            };
            // Without the documents in the replica the checkpoint must not be taken.
            full_read(inner, ns, filter.clone())
                .await?
                .map_err(|e| keel_core::Error::config(e.to_string()))?;
            StartFrom::At(at)
        };
        let (db, coll) = super::split_ns(ns);
        let weak = Arc::downgrade(inner);
        let handler = {
            let (weak, ns, filter) = (weak.clone(), ns.to_owned(), filter.clone());
            move |events: Vec<ChangeEvent<Document>>| {
                handle(weak.clone(), ns.clone(), filter.clone(), events)
            }
        };
        let on_notice = {
            let (weak, ns) = (weak.clone(), ns.to_owned());
            move |notice: Notice| {
                if matches!(notice, Notice::Gap { .. } | Notice::Restarted)
                    && let Some(inner) = weak.upgrade()
                {
                    inner.request_resync(&ns);
                }
            }
        };
        let consumer = ChangeConsumer::<Document>::builder(inner.keel.clone(), &consumer_name(ns))
            .collection(&db, &coll)
            // The documents are read again after each batch: only which ones changed matters.
            .pipeline([
                doc! { "$project": { "operationType": 1, "documentKey": 1, "clusterTime": 1 } },
            ])
            .store(store)
            .start_from(start_from)
            .batch_handler(handler)
            .handler_retry(HandlerRetry {
                max_attempts: 10,
                backoff: keel_retry::BackoffConfig {
                    cap: Duration::from_secs(5),
                    ..keel_retry::BackoffConfig::default()
                },
            })
            .on_handler_failure(FailurePolicy::Stop)
            .on_history_lost(HistoryLostPolicy::RestartFromNow)
            .on_invalidate(InvalidatePolicy::Restart)
            .on_notice(on_notice)
            .spawn()?;
        let status = consumer.status();
        // Wake the sync task when the consumer stops, so it falls back or restarts at once.
        let mut watcher = consumer.status();
        tokio::spawn(async move {
            let _ = watcher
                .wait_for(|s| matches!(s, ConsumerStatus::Stopped { .. }))
                .await;
            if let Some(inner) = weak.upgrade() {
                inner.wake.notify_one();
            }
        });
        Ok(Some(Self {
            filter: filter.clone(),
            consumer,
            status,
        }))
    }

    pub(crate) fn stopped(&self) -> bool {
        matches!(*self.status.borrow(), ConsumerStatus::Stopped { .. })
    }

    /// Stops the consumer (gracefully, committing what was handled) and gives how it ended.
    pub(crate) async fn finish(self) -> Result<(), keel_core::Error> {
        self.consumer.shutdown().await
    }
}

/// A consumer name from the namespace (names are `A–Z a–z 0–9 . _ -`, at most 120 characters;
/// the checkpoint is keyed by the namespace itself, so a clash of names is harmless).
fn consumer_name(ns: &str) -> String {
    let clean: String = ns
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("keel-sync.{clean}")
}

/// Applies one batch: a document event reads its document again (with the subscription
/// filter); an event without a document (drop, invalidate) reads the whole subscription.
async fn handle(
    inner: Weak<Inner>,
    ns: String,
    filter: Document,
    events: Vec<ChangeEvent<Document>>,
) -> Result<(), String> {
    let Some(inner) = inner.upgrade() else {
        return Err("the sync client is gone".to_owned());
    };
    let count = u64::try_from(events.len()).unwrap_or(u64::MAX);
    if events.iter().any(|e| e.document_key.is_none()) {
        full_read(&inner, &ns, filter)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    } else {
        let keys: Vec<Document> = events.into_iter().filter_map(|e| e.document_key).collect();
        let (set, ids) = event_ids(&ns, &keys);
        let docs = read::by_ids(&inner.keel, &ns, &filter, ids)
            .await
            .map_err(|e| e.to_string())?;
        apply(&inner, &ns, docs, Scope::Only(&set))
            .await
            .map_err(|e| e.to_string())?;
    }
    inner.note_download(&ns, |info| info.events += count);
    inner.publish_status();
    Ok(())
}
