//! Initial snapshots against keel-testkit: existing documents come as `snapshot` events, then
//! the stream from the snapshot's time (no gap); a restarted snapshot continues by `_id` range
//! from its checkpoint; connection resets; `Resnapshot` after history lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_change_streams::{
    ChangeConsumer, ChangeEvent, CheckpointStore, CommitPolicy, HistoryLostPolicy,
    MemoryCheckpointStore, Notice, OperationType, StartFrom,
};
use mongodb::bson::{Document, doc};
use support::*;

/// (operation, `_id`) as the handler saw them.
#[derive(Clone, Default)]
struct Ops(Arc<Mutex<Vec<(OperationType, i32)>>>);

impl Ops {
    fn all(&self) -> Vec<(OperationType, i32)> {
        self.0.lock().unwrap().clone()
    }
    fn ids(&self, op: &OperationType) -> Vec<i32> {
        self.all()
            .into_iter()
            .filter(|(o, _)| o == op)
            .map(|(_, i)| i)
            .collect()
    }
    async fn wait_for(&self, what: &str, f: impl Fn(&[(OperationType, i32)]) -> bool) {
        let ok = tokio::time::timeout(WAIT, async {
            while !f(&self.all()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(ok.is_ok(), "timed out waiting for {what}: {:?}", self.all());
    }
}

fn record(ops: &Ops, event: &ChangeEvent<Document>) {
    if let Some(id) = doc_id(event) {
        ops.0.lock().unwrap().push((event.operation.clone(), id));
    }
}

fn snapshotting(
    keel: mongokeel::Keel,
    name: &str,
    ops: &Ops,
    store: &MemoryCheckpointStore,
) -> keel_change_streams::ChangeConsumerBuilder<Document> {
    let ops = ops.clone();
    ChangeConsumer::<Document>::builder(keel, name)
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .start_from(StartFrom::Snapshot)
        .snapshot_page_size(7)
        .store(store.clone())
        .handler(move |event| {
            let ops = ops.clone();
            async move {
                record(&ops, &event);
                Ok::<_, String>(())
            }
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_copies_the_collection_then_streams_from_its_time_without_a_gap() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    insert(&keel, 0..50).await;
    let ops = Ops::default();
    let store = MemoryCheckpointStore::new();
    // While the snapshot copies, another writer adds documents: each is seen (as a snapshot
    // event or as an insert, or both), none falls between the copy and the stream.
    let writer = keel.clone();
    let db = db();
    let inserted_during = tokio::spawn(async move { insert_in(&writer, &db, 1000..1030).await });
    let consumer = snapshotting(keel.clone(), "snap", &ops, &store)
        .spawn()
        .unwrap();
    ops.wait_for("the 50 existing documents as snapshot events", |all| {
        (0..50).all(|i| all.contains(&(OperationType::Snapshot, i)))
    })
    .await;
    inserted_during.await.unwrap();
    insert(&keel, 2000..2005).await;
    ops.wait_for(
        "every document written during and after the snapshot",
        |all| {
            (1000..1030)
                .chain(2000..2005)
                .all(|i| all.iter().any(|(_, id)| *id == i))
        },
    )
    .await;
    // Only the last write before the snapshot may come again as an insert: the recorded
    // operation time is that write's, and `startAtOperationTime` is inclusive.
    let early: Vec<i32> = ops
        .ids(&OperationType::Insert)
        .into_iter()
        .filter(|i| *i < 1000)
        .collect();
    assert!(early.is_empty() || early == [49], "{early:?}");
    let snapshot = ops.ids(&OperationType::Snapshot);
    assert!(
        snapshot.windows(2).all(|w| w[0] < w[1]),
        "snapshot in _id order: {snapshot:?}"
    );
    assert!(
        ops.ids(&OperationType::Insert)
            .ends_with(&[2000, 2001, 2002, 2003, 2004]),
        "{:?}",
        ops.all()
    );
    consumer.shutdown().await.unwrap();
    // Afterwards the checkpoint is a stream position: a restart copies nothing again.
    let again = Ops::default();
    let consumer = snapshotting(keel.clone(), "snap", &again, &store)
        .spawn()
        .unwrap();
    insert(&keel, 3000..3001).await;
    again
        .wait_for("the next insert", |all| all.iter().any(|(_, i)| *i == 3000))
        .await;
    assert!(
        again.ids(&OperationType::Snapshot).is_empty(),
        "{:?}",
        again.all()
    );
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_snapshot_continues_after_the_last_committed_id() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    insert(&keel, 0..60).await;
    let store = MemoryCheckpointStore::new();
    let ops = Ops::default();
    let recorder = ops.clone();
    // Document 30 never finishes; progress is committed every 5 documents before it.
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "snap-kill")
        .collection(&db(), "orders")
        .start_from(StartFrom::Snapshot)
        .snapshot_page_size(8)
        .commit_policy(CommitPolicy::EveryN(5))
        .store(store.clone())
        .handler(move |event| {
            let ops = recorder.clone();
            async move {
                if event.document_key == Some(doc! {"_id": 30}) {
                    std::future::pending::<()>().await;
                }
                record(&ops, &event);
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap();
    ops.wait_for("documents up to 29", |all| {
        all.contains(&(OperationType::Snapshot, 29))
    })
    .await;
    let committed = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(c) = store.load("snap-kill").await.unwrap()
                && c.token
                    .get_document("keelSnapshot")
                    .is_ok_and(|s| s.get_i32("after") == Ok(29))
            {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("snapshot progress committed up to 29");
    assert!(
        committed
            .token
            .get_document("keelSnapshot")
            .unwrap()
            .get_bool("done")
            == Ok(false)
    );
    consumer.abort();
    insert(&keel, 500..503).await;
    let again = Ops::default();
    let consumer = snapshotting(keel.clone(), "snap-kill", &again, &store)
        .spawn()
        .unwrap();
    again
        .wait_for(
            "the rest of the snapshot and the inserts made meanwhile",
            |all| {
                (30..60).all(|i| all.contains(&(OperationType::Snapshot, i)))
                    && (500..503).all(|i| all.iter().any(|(_, id)| *id == i))
            },
        )
        .await;
    let resumed = again.ids(&OperationType::Snapshot);
    assert_eq!(
        resumed.first(),
        Some(&30),
        "continued by _id range: {resumed:?}"
    );
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_survives_connection_resets() {
    let rs = replica_set(10_000).await;
    let Some(server) = rs.testkit("the fault proxy fronts one testkit member directly") else {
        return;
    };
    let writer = keel(&rs.uri()).await;
    insert(&writer, 0..40).await;
    let proxy = keel_testkit::FaultProxy::start(server.addr())
        .await
        .unwrap();
    let through = keel(&format!(
        "mongodb://{}/?directConnection=true",
        proxy.addr()
    ))
    .await;
    let ops = Ops::default();
    let recorder = ops.clone();
    let proxy = Arc::new(proxy);
    let resets = Arc::clone(&proxy);
    let consumer = ChangeConsumer::<Document>::builder(through, "snap-reset")
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .start_from(StartFrom::Snapshot)
        .snapshot_page_size(5)
        .handler(move |event| {
            let (ops, proxy) = (recorder.clone(), Arc::clone(&resets));
            async move {
                if doc_id(&event) == Some(12) || doc_id(&event) == Some(27) {
                    proxy.reset_all();
                }
                record(&ops, &event);
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap();
    ops.wait_for("every document despite the resets", |all| {
        (0..40).all(|i| all.contains(&(OperationType::Snapshot, i)))
    })
    .await;
    insert(&writer, 100..101).await;
    ops.wait_for("the stream after the snapshot", |all| {
        all.contains(&(OperationType::Insert, 100))
    })
    .await;
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lost_can_resnapshot() {
    let Some(rs) = testkit_only(
        10,
        "a real server's oplog cannot be shrunk to force ChangeStreamHistoryLost",
    )
    .await
    else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    let store = MemoryCheckpointStore::new();
    let ops = Ops::default();
    let first = snapshotting(keel.clone(), "resnap", &ops, &store)
        .start_from(StartFrom::Now)
        .spawn()
        .unwrap();
    running(&first).await;
    insert(&keel, 0..1).await;
    ops.wait_for("1", |all| all.len() == 1).await;
    first.shutdown().await.unwrap();
    insert(&keel, 1..40).await; // the checkpoint falls off the 10-entry oplog
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    let after = Ops::default();
    let consumer = snapshotting(keel.clone(), "resnap", &after, &store)
        .start_from(StartFrom::Now)
        .on_history_lost(HistoryLostPolicy::Resnapshot)
        .on_notice(move |n| sink.lock().unwrap().push(n))
        .spawn()
        .unwrap();
    after
        .wait_for("every document copied again", |all| {
            (0..40).all(|i| all.contains(&(OperationType::Snapshot, i)))
        })
        .await;
    assert!(
        matches!(
            notices.lock().unwrap()[..],
            [Notice::Resnapshot { from: Some(_) }]
        ),
        "{:?}",
        notices.lock().unwrap()
    );
    insert(&keel, 100..101).await;
    after
        .wait_for("an insert after the resnapshot", |all| {
            all.contains(&(OperationType::Insert, 100))
        })
        .await;
    assert!(store.load("resnap").await.unwrap().is_some());
    consumer.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_snapshot_needs_a_collection() {
    let rs = replica_set(100).await;
    let keel = keel(&rs.uri()).await;
    let err = ChangeConsumer::<Document>::builder(keel, "x")
        .database(&db())
        .start_from(StartFrom::Snapshot)
        .handler(|_e| async { Ok::<_, String>(()) })
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains(".collection(db, coll)"), "{err}");
}
