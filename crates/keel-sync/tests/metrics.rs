//! The `keel_sync_*` metrics read back with a local recorder (`metrics::with_local_recorder`
//! around a current-thread runtime, so every task of the client records into it; never a
//! global recorder): pending count, oldest pending age, quarantined and conflict counts, and a
//! failure to record a conflict decision counted as `class="local_store"`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{collections::HashMap, time::Duration};

use keel_sync::{Changes, ConflictPolicy};
use keel_testkit::FaultProxy;
use metrics_util::{
    CompositeKey,
    debugging::{DebugValue, DebuggingRecorder},
};
use mongodb::bson::{Document, doc};
use support::eventually;

/// Every `keel_sync_*` series of the app `metrics` (the store file's name), keyed by (name,
/// class label). A snapshot resets what it takes
/// (counters count from the previous snapshot; gauges read 0 until set again).
fn series(recorder: &DebuggingRecorder) -> HashMap<(String, Option<String>), f64> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value): (CompositeKey, _, _, _)| {
            let name = key.key().name().to_owned();
            let label = |name: &str| {
                key.key()
                    .labels()
                    .find(|l| l.key() == name)
                    .map(|l| l.value().to_owned())
            };
            let class = label("class");
            if label("app").as_deref() != Some("metrics") {
                return None;
            }
            #[allow(clippy::cast_precision_loss)]
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(v) => v.into_inner(),
                DebugValue::Histogram(_) => return None,
            };
            name.starts_with("keel_sync_")
                .then_some(((name, class), value))
        })
        .collect()
}

fn value(series: &HashMap<(String, Option<String>), f64>, name: &str) -> f64 {
    series
        .get(&(name.to_owned(), None))
        .copied()
        .unwrap_or_else(|| panic!("no series {name}: {series:?}"))
}

#[test]
fn the_metrics_show_the_queue_quarantine_and_conflicts() {
    if support::skips_on_real_server("cuts the client off at a fault proxy") {
        return;
    }
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario(&recorder));
    });
}

async fn scenario(recorder: &DebuggingRecorder) {
    let server = keel_testkit::TestServer::start().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let db = support::database("metrics");
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let coll = raw.database(&db).collection::<Document>("notes");
    // A unique `email`: the second insert with the same one is refused for good.
    coll.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .unique(true)
                    .sparse(true)
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    let client = keel_sync::SyncClient::builder(
        support::keel(&proxy.uri()).await,
        keel_sync::Store::open(support::store_path("metrics")).unwrap(),
    )
    // No download between the reconnect and the upload: the update meets the outside write.
    .change_streams(false)
    .poll_interval(Duration::from_secs(3600))
    .build()
    .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .policy(ConflictPolicy::ClientWins)
        .subscribe(doc! {});
    notes.insert(doc! { "_id": 1, "n": 0 }).await.unwrap();
    eventually("the insert uploads", || {
        client.status().borrow().pending == 0
    })
    .await;
    support::cut_off(&proxy, &client).await;
    // Changed on the server meanwhile: the queued update is a conflict.
    coll.update_one(
        doc! { "_id": 1 },
        doc! { "$set": { "m": 1 }, "$inc": { "_sync.v": 1 } },
    )
    .await
    .unwrap();

    let before_writes = std::time::SystemTime::now();
    notes.update(1, Changes::new().inc("n", 1)).await.unwrap();
    notes
        .insert(doc! { "_id": 2, "email": "ada@example.com" })
        .await
        .unwrap();
    notes
        .insert(doc! { "_id": 3, "email": "ada@example.com" })
        .await
        .unwrap();
    let offline = series(recorder);
    assert_eq!(value(&offline, "keel_sync_pending_operations"), 3.0);
    assert_eq!(value(&offline, "keel_sync_online"), 0.0);
    assert_eq!(value(&offline, "keel_sync_quarantined_operations"), 0.0);
    assert_eq!(value(&offline, "keel_sync_conflicts"), 0.0);
    // The age of the first of the three writes when the status was last published (after the
    // third): at most the time since just before it (+1 ms: stored in whole milliseconds).
    let oldest = value(&offline, "keel_sync_oldest_pending_seconds");
    let bound = before_writes.elapsed().unwrap().as_secs_f64() + 0.001;
    assert!(
        oldest > 0.0 && oldest <= bound,
        "{oldest} s, at most {bound} s"
    );

    // The conflict's decision is the first thing the upload stores: that commit fails (as on
    // a full disk), the round fails as a local store failure, and the next round (after the
    // backoff) settles it.
    client.store().fail_next_commits(1);
    proxy.clear().await.unwrap();
    eventually("the queue drains", || {
        let status = client.status().borrow().clone();
        status.pending == 0 && status.quarantined == 1
    })
    .await;
    let drained = series(recorder);
    assert_eq!(value(&drained, "keel_sync_pending_operations"), 0.0);
    assert_eq!(value(&drained, "keel_sync_oldest_pending_seconds"), 0.0);
    assert_eq!(value(&drained, "keel_sync_quarantined_operations"), 1.0);
    assert_eq!(value(&drained, "keel_sync_conflicts"), 1.0);
    assert_eq!(value(&drained, "keel_sync_online"), 1.0);
    assert_eq!(value(&drained, "keel_sync_conflicts_total"), 1.0);
    assert_eq!(value(&drained, "keel_sync_quarantined_total"), 1.0);
    assert!(
        value(&drained, "keel_sync_uploaded_total") >= 2.0,
        "{drained:?}"
    );
    // (The recorder's snapshots take counters and reset them: these count since `offline`. A
    // round that failed while the proxy cut the client off counts as `unavailable` or
    // `network`; only the failed commit is `local_store`.)
    assert_eq!(
        drained.get(&(
            "keel_sync_upload_failures_total".to_owned(),
            Some("local_store".to_owned())
        )),
        Some(&1.0),
        "the failed decision record is one failed round, classed as the local store: {drained:?}"
    );
    assert_eq!(client.store().conflicts().unwrap().len(), 1);
    let on_server = coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(
        (
            on_server.get_i32("n").unwrap(),
            on_server.get_i32("m").unwrap()
        ),
        (1, 1)
    );
}
