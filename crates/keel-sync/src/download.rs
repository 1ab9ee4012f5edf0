//! Download: server changes to subscribed documents into the local replica. A small trait, so a
//! change-stream source (keel-change-streams) can replace the polling one.

use futures_util::{TryStreamExt, future::BoxFuture};
use mongodb::bson::Document;
use mongokeel::Keel;

use crate::{
    client::Inner,
    hlc::wall_ms,
    operation::DocKey,
    server_record::ServerDoc,
    store::{META_LAST_SYNC, Mutation},
};

/// Where server changes come from.
pub(crate) trait ChangeSource: Send + Sync {
    /// The server's documents matching `filter` in `ns` (tombstones included: they keep their
    /// last fields). Polling reads them all; a change-stream source would give the changed
    /// ones since its checkpoint.
    fn snapshot(
        &self,
        ns: &str,
        filter: Document,
    ) -> BoxFuture<'static, Result<Vec<Document>, keel_core::Error>>;
}

/// Polls every subscribed collection in full through `Keel::run`: simple and exact (documents
/// that left the filter are noticed), one read per subscription and poll.
pub(crate) struct PollingSource {
    pub(crate) keel: Keel,
}

impl ChangeSource for PollingSource {
    fn snapshot(
        &self,
        ns: &str,
        filter: Document,
    ) -> BoxFuture<'static, Result<Vec<Document>, keel_core::Error>> {
        let keel = self.keel.clone();
        let (db, coll) = split_ns(ns);
        Box::pin(async move {
            keel.run(keel_core::Operation::read(
                "keel_sync.download",
                move |client: mongodb::Client| {
                    let collection = client.database(&db).collection::<Document>(&coll);
                    let filter = filter.clone();
                    async move { collection.find(filter).await?.try_collect().await }
                },
            ))
            .await
        })
    }
}

pub(crate) fn split_ns(ns: &str) -> (String, String) {
    match ns.split_once('.') {
        Some((db, coll)) => (db.to_owned(), coll.to_owned()),
        None => (ns.to_owned(), String::new()),
    }
}

/// One download round over every subscription; the replica only ever moves forward (a
/// document is replaced only by a higher version).
pub(crate) async fn poll(inner: &Inner, source: &dyn ChangeSource) -> Result<(), keel_core::Error> {
    let subscriptions: Vec<(String, Document)> = inner
        .subscriptions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(ns, filter)| (ns.clone(), filter.clone()))
        .collect();
    let mut durable = Vec::new();
    for (ns, filter) in subscriptions {
        let docs = source.snapshot(&ns, filter).await?;
        let mut state = inner.lock();
        let mut mutations = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for doc in docs {
            let Some(id) = doc.get("_id").cloned() else {
                continue;
            };
            let Ok(key) = DocKey::new(&ns, &id) else {
                continue;
            };
            let server = ServerDoc::split(doc);
            seen.insert(key.clone());
            let newer = state.replica.get(&key).is_none_or(|known| {
                server.record.v > known.record.v
                    || (!server.tracked && known.fields != server.fields)
            });
            if newer {
                if let Ok(bytes) = server.to_bytes() {
                    mutations.push(Mutation::PutReplica(key.to_bytes(), bytes));
                }
                state
                    .hlc
                    .observe(u64::try_from(server.record.hlc).unwrap_or(0));
                state.replica.insert(key.clone(), server);
                inner.view_changed(&mut state, &key);
            }
        }
        // Documents that left the subscription (or were removed outside keel-sync).
        let gone: Vec<DocKey> = state
            .replica
            .keys()
            .filter(|key| key.ns == ns && !seen.contains(*key))
            .cloned()
            .collect();
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
        match inner.store.submit(mutations) {
            Ok(d) => durable.push(d),
            Err(e) => {
                tracing::warn!(error = %e, "keel-sync: the download checkpoint was not stored")
            }
        }
    }
    for d in durable {
        if let Err(e) = d.wait().await {
            tracing::warn!(error = %e, "keel-sync: the download checkpoint was not stored");
        }
    }
    Ok(())
}
