//! `partition_by_document_key(n)` against keel-testkit: several handlers at once with random
//! delays, server order kept per document, and a kill mid-way redelivers but never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use keel_change_streams::{ChangeConsumer, CheckpointStore, CommitPolicy, MemoryCheckpointStore};
use mongodb::bson::{Document, doc};
use support::*;

/// (document id, version) in the order the handlers started them.
#[derive(Clone, Default)]
struct Versions(Arc<Mutex<Vec<(i32, i32)>>>);

impl Versions {
    fn all(&self) -> Vec<(i32, i32)> {
        self.0.lock().unwrap().clone()
    }
    async fn wait_for(&self, what: &str, f: impl Fn(&[(i32, i32)]) -> bool) {
        let ok = tokio::time::timeout(WAIT, async {
            while !f(&self.all()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(ok.is_ok(), "timed out waiting for {what}: {:?}", self.all());
    }
}

fn version(event: &keel_change_streams::ChangeEvent<Document>) -> Option<(i32, i32)> {
    let id = event.document_key.as_ref()?.get_i32("_id").ok()?;
    let v = match (&event.full_document, &event.update_description) {
        (Some(doc), _) => doc.get_i32("v").ok()?,
        (None, Some(update)) => update
            .get_document("updatedFields")
            .ok()?
            .get_i32("v")
            .ok()?,
        _ => return None,
    };
    Some((id, v))
}

const DOCS: i32 = 8;
const VERSIONS: i32 = 6;

async fn write_versions(keel: &mongokeel::Keel) {
    let orders = keel.collection::<Document>(&db(), "orders");
    for v in 0..VERSIONS {
        for id in 0..DOCS {
            if v == 0 {
                orders.insert_one(doc! {"_id": id, "v": 0}).await.unwrap();
            } else {
                orders
                    .update_one(doc! {"_id": id}, doc! {"$set": {"v": v}})
                    .await
                    .unwrap();
            }
        }
    }
}

fn complete(seen: &[(i32, i32)]) -> bool {
    (0..DOCS).all(|id| (0..VERSIONS).all(|v| seen.contains(&(id, v))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_run_concurrently_and_keep_order_per_document() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let seen = Versions::default();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let store = MemoryCheckpointStore::new();
    let recorder = seen.clone();
    let (running_now, running_peak) = (now.clone(), peak.clone());
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "parts")
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .partition_by_document_key(4)
        .commit_policy(CommitPolicy::EveryEvent)
        .store(store.clone())
        .handler(move |event| {
            let (seen, now, peak) = (recorder.clone(), running_now.clone(), running_peak.clone());
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(running, Ordering::SeqCst);
                if let Some(v) = version(&event) {
                    seen.0.lock().unwrap().push(v);
                }
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 15)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap();
    running(&consumer).await;
    write_versions(&keel).await;
    seen.wait_for("every version", complete).await;
    let mut per_doc: HashMap<i32, Vec<i32>> = HashMap::new();
    for (id, v) in seen.all() {
        per_doc.entry(id).or_default().push(v);
    }
    for (id, versions) in &per_doc {
        assert_eq!(
            versions,
            &(0..VERSIONS).collect::<Vec<_>>(),
            "document {id}"
        );
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!((2..=4).contains(&peak), "peak concurrency {peak}");
    let handled = tokio::time::timeout(WAIT, async {
        while consumer.stats().handled() < 48 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(handled.is_ok(), "handled {}", consumer.stats().handled());
    consumer.shutdown().await.unwrap();
    // Everything was handled, so a restart from the checkpoint redelivers nothing.
    let checkpoint = store.load("parts").await.unwrap().unwrap();
    assert!(checkpoint.version >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_partitioned_consumer_redelivers_from_the_oldest_unfinished_event() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let store = MemoryCheckpointStore::new();
    let seen = Versions::default();
    let recorder = seen.clone();
    // Document 3's version 2 never finishes; the other documents go on past it.
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "parts-kill")
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .partition_by_document_key(3)
        .commit_policy(CommitPolicy::EveryEvent)
        .store(store.clone())
        .handler(move |event| {
            let seen = recorder.clone();
            async move {
                let v = version(&event);
                if v == Some((3, 2)) {
                    std::future::pending::<()>().await;
                }
                seen.0.lock().unwrap().extend(v);
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap();
    running(&consumer).await;
    write_versions(&keel).await;
    seen.wait_for("document 0 finished", |s| s.contains(&(0, VERSIONS - 1)))
        .await;
    assert!(
        !seen.all().iter().any(|&(id, v)| id == 3 && v > 2),
        "order of document 3 broken"
    );
    consumer.abort();
    // Restart: (3, 2) and everything not covered by the checkpoint comes again; nothing is
    // missing across both runs.
    let again = Versions::default();
    let recorder = again.clone();
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "parts-kill")
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .partition_by_document_key(3)
        .store(store.clone())
        .handler(move |event| {
            let seen = recorder.clone();
            async move {
                seen.0.lock().unwrap().extend(version(&event));
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap();
    again
        .wait_for("document 3 from version 2", |s| s.contains(&(3, 2)))
        .await;
    again
        .wait_for("the last version of document 3", |s| {
            s.contains(&(3, VERSIONS - 1))
        })
        .await;
    let mut both = seen.all();
    both.extend(again.all());
    assert!(complete(&both), "missing events: {both:?}");
    consumer.shutdown().await.unwrap();
}
