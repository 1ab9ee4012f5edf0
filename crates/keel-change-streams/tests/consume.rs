//! Consumers against keel-testkit: delivery in order, at-least-once across a crash, resumes,
//! history lost, invalidate, dead letters and quiet-stream heartbeats.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{sync::Arc, time::Duration};

use keel_change_streams::{
    ChangeConsumer, CheckpointStore, CommitPolicy, FailurePolicy, FileCheckpointStore,
    HistoryLostPolicy, InvalidatePolicy, MemoryCheckpointStore, MongoCheckpointStore, Notice,
    OperationType,
};
use keel_testkit::FailCommand;
use mongodb::bson::{Document, doc};
use support::*;

const NO_TINY_OPLOG: &str =
    "a real server's oplog cannot be shrunk to force ChangeStreamHistoryLost";

/// Consumer `name` handles event 0 and commits, then 39 more changes push its checkpoint off
/// the 10-entry oplog.
async fn lose_history(keel: &mongokeel::Keel, name: &str, store: &MemoryCheckpointStore) {
    let seen = Seen::default();
    let consumer = recording(keel.clone(), name, &seen)
        .store(store.clone())
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(keel, 0..1).await;
    seen.wait_for("1", |ids| ids.len() == 1).await;
    consumer.shutdown().await.unwrap();
    insert(keel, 1..40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_event_in_order_and_commits_on_shutdown() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let store = MemoryCheckpointStore::new();
    let seen = Seen::default();
    let consumer = recording(keel.clone(), "orders", &seen)
        .store(store.clone())
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..50).await;
    seen.wait_for("50 events", |ids| ids.len() == 50).await;
    assert_eq!(seen.ids(), (0..50).collect::<Vec<_>>());
    assert_eq!(consumer.stats().handled(), 50);
    let health = consumer.health();
    assert_eq!(
        health.status,
        keel_health::HealthStatus::Healthy,
        "{:?}",
        health.reasons
    );
    assert!(consumer.stats().commits() >= 1 && consumer.stats().since_last_commit().is_some());
    consumer.shutdown().await.unwrap();
    let checkpoint = store.load("orders").await.unwrap().expect("a checkpoint");
    assert!(checkpoint.version >= 1);
    // Restarting from the checkpoint redelivers nothing already committed.
    let again = Seen::default();
    let consumer = recording(keel.clone(), "orders", &again)
        .store(store.clone())
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 50..51).await;
    again.wait_for("event 50", |ids| ids.contains(&50)).await;
    assert_eq!(again.ids(), [50]);
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_between_handler_and_commit_redelivers_and_misses_nothing() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let store = MemoryCheckpointStore::new();
    let seen = Seen::default();
    let stalled = seen.clone();
    // Events 0..=11 are handled, the checkpoint is committed after 7 of them, and the handler
    // of event 12 never returns: the kill lands between handlers and the next commit.
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "kill")
        .collection(&db(), "orders")
        .commit_policy(CommitPolicy::EveryN(7))
        .handler(move |event| {
            let seen = stalled.clone();
            async move {
                let id = doc_id(&event).unwrap();
                if id == 12 {
                    std::future::pending::<()>().await;
                }
                seen.push(id, event.event_id().clone());
                Ok::<_, String>(())
            }
        })
        .store(store.clone())
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..30).await;
    seen.wait_for("events 0..12", |ids| ids.len() == 12).await;
    consumer.abort();
    let committed = store
        .load("kill")
        .await
        .unwrap()
        .expect("a checkpoint after 7 events");
    assert_eq!(committed.version, 1);
    insert(&keel, 30..40).await;
    let after = Seen::default();
    let consumer = recording(keel.clone(), "kill", &after)
        .store(store.clone())
        .spawn()
        .unwrap();
    after.wait_for("event 39", |ids| ids.contains(&39)).await;
    consumer.shutdown().await.unwrap();
    // Every event after the committed checkpoint came again, in order: 7..40.
    assert_eq!(after.ids(), (7..40).collect::<Vec<_>>());
    // The redelivered events carry the same ids.
    let before = seen.0.lock().unwrap().clone();
    let again = after.0.lock().unwrap().clone();
    assert_eq!(before[7].1, again[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_more_failures_resume_with_the_label_or_a_dropped_connection_and_stop_without() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let seen = Seen::default();
    let consumer = recording(keel.clone(), "faults", &seen).spawn().unwrap();
    running(&consumer).await;
    insert(&keel, 0..5).await;
    seen.wait_for("5 events", |ids| ids.len() == 5).await;
    // Labelled: the driver resumes once by itself; twice more makes the consumer resume too.
    rs.fail_command(
        FailCommand::new(["getMore", "aggregate"])
            .error_code(10107)
            .error_labels(["ResumableChangeStreamError"])
            .times(3),
    )
    .unwrap();
    seen.insert_and_see(&keel, 5..10, "10 events").await;
    rs.fail_command(FailCommand::new(["getMore"]).close_connection().times(2))
        .unwrap();
    seen.insert_and_see(&keel, 10..15, "15 events").await;
    assert!(first_sightings_in_order(&seen.ids()));
    assert!(
        consumer.stats().resumes() >= 1,
        "the consumer's own resume was not counted"
    );
    // Without the label, a server error on a 4.4+ server (wire version 21, learned from
    // `hello`) is not resumable, even 10107, which the pre-4.4 code list would resume: a
    // classified stop.
    rs.fail_command(FailCommand::new(["getMore"]).error_code(10107).times(1))
        .unwrap();
    let err = stop_error(consumer).await;
    assert_eq!(err.code(), Some(10107), "{err}");
}

/// A restart on the server's data directory: the data and the oplog are loaded back from disk,
/// and the consumer resumes from its token in the reloaded oplog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_survives_a_server_restart_on_its_data_directory() {
    if std::env::var("KEEL_TEST_URI").is_ok() {
        println!("skipped against KEEL_TEST_URI: a real server cannot be restarted by the test");
        return;
    }
    let data = std::env::temp_dir().join(format!("keel-cs-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let rs = Rs::Testkit(
        keel_testkit::TestServer::builder()
            .replica_set("rs0", 1)
            .oplog_size(10_000)
            .data_dir(&data)
            .start()
            .await
            .unwrap(),
    );
    let server = rs.testkit("").unwrap();
    let keel_direct = keel(&rs.uri()).await;
    let seen = Seen::default();
    let consumer = recording(keel_direct.clone(), "restart", &seen)
        .spawn()
        .unwrap();
    running(&consumer).await;
    seen.insert_and_see(&keel_direct, 0..5, "5").await;
    server.restart().await.unwrap();
    let kept = keel_direct
        .collection::<mongodb::bson::Document>(&db(), "orders")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert_eq!(
        kept, 5,
        "the restarted server loaded its data back from disk"
    );
    seen.insert_and_see(&keel_direct, 5..10, "10 after restart")
        .await;
    assert!(first_sightings_in_order(&seen.ids()));
    consumer.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lost_fails_by_default_naming_the_consumer() {
    let Some(rs) = testkit_only(10, NO_TINY_OPLOG).await else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    let store = MemoryCheckpointStore::new();
    lose_history(&keel, "lost", &store).await;
    let consumer = recording(keel.clone(), "lost", &Seen::default())
        .store(store.clone())
        .spawn()
        .unwrap();
    let err = stop_error(consumer).await;
    let message = err.to_string();
    assert!(
        message.contains("'lost'") && message.contains("no longer in the oplog"),
        "{message}"
    );
    assert!(message.contains("s old"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lost_can_restart_from_now_with_a_gap_notice() {
    let Some(rs) = testkit_only(10, NO_TINY_OPLOG).await else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    let store = MemoryCheckpointStore::new();
    lose_history(&keel, "gap", &store).await;
    let notices = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    let after = Seen::default();
    let consumer = recording(keel.clone(), "gap", &after)
        .store(store.clone())
        .on_history_lost(HistoryLostPolicy::RestartFromNow)
        .on_notice(move |n| sink.lock().unwrap().push(n))
        .spawn()
        .unwrap();
    let waited = tokio::time::timeout(WAIT, async {
        while notices.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "no gap notice");
    assert!(matches!(
        notices.lock().unwrap()[0],
        Notice::Gap { from: Some(_), .. }
    ));
    running(&consumer).await;
    insert(&keel, 100..101).await;
    after
        .wait_for("an event after the gap", |ids| ids.contains(&100))
        .await;
    consumer.shutdown().await.unwrap();
}

async fn drop_orders(keel: &mongokeel::Keel) {
    keel.run(keel_core::Operation::command(
        "app.orders.drop",
        true,
        |c| async move {
            c.database(&db())
                .collection::<Document>("orders")
                .drop()
                .await
        },
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_is_delivered_then_stops_or_restarts() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let ops = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = |ops: &Arc<std::sync::Mutex<Vec<OperationType>>>| {
        let ops = Arc::clone(ops);
        move |e: keel_change_streams::ChangeEvent<Document>| {
            let ops = Arc::clone(&ops);
            async move {
                ops.lock().unwrap().push(e.operation);
                Ok::<_, String>(())
            }
        }
    };
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "inv-stop")
        .collection(&db(), "orders")
        .handler(record(&ops))
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..1).await;
    drop_orders(&keel).await;
    tokio::time::timeout(WAIT, consumer.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        *ops.lock().unwrap(),
        [
            OperationType::Insert,
            OperationType::Drop,
            OperationType::Invalidate
        ]
    );

    let ops = Arc::new(std::sync::Mutex::new(Vec::new()));
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "inv-restart")
        .collection(&db(), "orders")
        .on_invalidate(InvalidatePolicy::Restart)
        .handler(record(&ops))
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..1).await;
    drop_orders(&keel).await;
    insert(&keel, 1..2).await;
    let waited = tokio::time::timeout(WAIT, async {
        while ops.lock().unwrap().len() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "seen {:?}", ops.lock().unwrap());
    assert_eq!(ops.lock().unwrap()[3], OperationType::Insert);
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_retried_then_dead_lettered() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "dlq")
        .collection(&db(), "orders")
        .handler_retry(fast_retry(2))
        .on_handler_failure(FailurePolicy::DeadLetter {
            database: db(),
            collection: "dead".into(),
        })
        .handler(|e: keel_change_streams::ChangeEvent<Document>| async move {
            match e.document_key.and_then(|k| k.get_i32("_id").ok()) {
                Some(1) => Err("order 1 is poison"),
                _ => Ok(()),
            }
        })
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..3).await;
    until_handled(&consumer, 3).await;
    assert_eq!(consumer.stats().dead_lettered(), 1);
    assert_eq!(consumer.stats().handler_errors(), 2);
    let dead = keel
        .collection::<Document>(&db(), "dead")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.get_str("error").unwrap(), "order 1 is poison");
    assert_eq!(dead.get_i64("attempts").unwrap(), 2);
    assert_eq!(
        dead.get_document("event")
            .unwrap()
            .get_document("documentKey")
            .unwrap(),
        &doc! {"_id": 1}
    );
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_error_stops_the_consumer_by_default() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let consumer = always_failing(keel.clone(), "stopper").spawn().unwrap();
    running(&consumer).await;
    insert(&keel, 0..1).await;
    let err = stop_error(consumer).await;
    assert!(err.to_string().contains("downstream is down"), "{err}");
    assert!(err.to_string().contains("'stopper'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_commits_heartbeats_and_outlives_the_oplog_window() {
    let Some(rs) = testkit_only(
        20,
        "the test needs an oplog of 20 entries that the filtered writes overrun",
    )
    .await
    else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    let store = MongoCheckpointStore::new(keel.clone(), &db());
    let seen = Seen::default();
    let quiet = |seen: &Seen| {
        recording(keel.clone(), "quiet", seen)
            .store(store.clone())
            .pipeline([doc! {"$match": {"fullDocument.keep": true}}])
            .heartbeat(Duration::ZERO)
    };
    let consumer = quiet(&seen).spawn().unwrap();
    running(&consumer).await;
    // Far more non-matching changes than the oplog keeps.
    insert(&keel, 0..60).await;
    let after_writes = consumer.stats().heartbeats();
    let waited = tokio::time::timeout(WAIT, async {
        while consumer.stats().heartbeats() < after_writes + 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "no heartbeat commits");
    consumer.shutdown().await.unwrap();
    // A restart resumes from the heartbeat's token, still inside the oplog.
    let consumer = quiet(&seen).spawn().unwrap();
    running(&consumer).await;
    keel.collection::<Document>(&db(), "orders")
        .insert_one(doc! {"_id": 1000, "keep": true})
        .await
        .unwrap();
    seen.wait_for("the matching event", |ids| ids == [1000])
        .await;
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_checkpoint_carries_a_consumer_across_restarts() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let dir = std::env::temp_dir().join(format!("keel-cs-file-{}", std::process::id()));
    let seen = Seen::default();
    let consumer = recording(keel.clone(), "file", &seen)
        .store(FileCheckpointStore::new(&dir))
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..5).await;
    seen.wait_for("5", |ids| ids.len() == 5).await;
    consumer.shutdown().await.unwrap();
    insert(&keel, 5..8).await;
    let after = Seen::default();
    let consumer = recording(keel.clone(), "file", &after)
        .store(FileCheckpointStore::new(&dir))
        .spawn()
        .unwrap();
    after.wait_for("5..8", |ids| ids == [5, 6, 7]).await;
    consumer.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_settings_are_typed_errors() {
    let rs = replica_set(100).await;
    let keel = keel(&rs.uri()).await;
    let no_target = ChangeConsumer::<Document>::builder(keel.clone(), "x")
        .handler(|_e| async { Ok::<_, String>(()) })
        .spawn()
        .unwrap_err();
    assert!(no_target.to_string().contains("no target"), "{no_target}");
    let no_handler = ChangeConsumer::<Document>::builder(keel.clone(), "x")
        .collection("a", "b")
        .spawn()
        .unwrap_err();
    assert!(no_handler.to_string().contains("no handler"));
    let bad_name = ChangeConsumer::<Document>::builder(keel, "a/b")
        .collection("a", "b")
        .handler(|_e| async { Ok::<_, String>(()) })
        .spawn()
        .unwrap_err();
    assert!(bad_name.to_string().contains("not valid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_survives_fault_proxy_resets() {
    let rs = replica_set(10_000).await;
    let Some(server) = rs.testkit("the fault proxy fronts one testkit member directly") else {
        return;
    };
    let proxy = keel_testkit::FaultProxy::start(server.addr())
        .await
        .unwrap();
    // Direct to the one member through the proxy (discovery would bypass it).
    let through = keel(&format!(
        "mongodb://{}/?directConnection=true",
        proxy.addr()
    ))
    .await;
    let writer = keel(&rs.uri()).await;
    let seen = Seen::default();
    let consumer = recording(through, "proxy", &seen).spawn().unwrap();
    running(&consumer).await;
    for round in 0..5 {
        insert(&writer, round * 10..round * 10 + 10).await;
        proxy.reset_all();
        seen.wait_for("every event so far", |ids| all_seen(ids, round * 10 + 10))
            .await;
    }
    assert!(first_sightings_in_order(&seen.ids()));
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_follows_a_primary_step_down() {
    if std::env::var_os("KEEL_TEST_URI").is_some() {
        println!("skipped against KEEL_TEST_URI: the test steps a testkit primary down");
        return;
    }
    let rs = keel_testkit::TestServer::replica_set("rs0", 3)
        .await
        .unwrap();
    let keel = keel(&rs.uri()).await;
    let seen = Seen::default();
    let consumer = recording(keel.clone(), "stepdown", &seen).spawn().unwrap();
    running(&consumer).await;
    seen.insert_and_see(&keel, 0..10, "10").await;
    rs.step_down().unwrap();
    seen.insert_and_see(&keel, 10..20, "20 after the step-down")
        .await;
    assert!(first_sightings_in_order(&seen.ids()));
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mongo_store_compares_and_sets() {
    let rs = replica_set(100).await;
    let keel = keel(&rs.uri()).await;
    let store = MongoCheckpointStore::new(keel, &db());
    assert_eq!(store.load("c").await.unwrap(), None);
    let t1 = doc! {"_data": "01"};
    assert_eq!(
        store.commit("c", 0, &t1, None, None).await.unwrap().version,
        1
    );
    let t2 = doc! {"_data": "02"};
    let stale = store.commit("c", 0, &t2, None, None).await.unwrap_err();
    assert!(
        matches!(
            stale,
            keel_change_streams::CommitError::Conflict { found: Some(1), .. }
        ),
        "{stale}"
    );
    assert_eq!(
        store.commit("c", 1, &t2, None, None).await.unwrap().version,
        2
    );
    // A retried commit whose first attempt applied is recognised as stored.
    assert_eq!(
        store.commit("c", 1, &t2, None, None).await.unwrap().version,
        2
    );
    assert_eq!(store.load("c").await.unwrap().unwrap().token, t2);
    store.clear("c").await.unwrap();
    assert_eq!(store.load("c").await.unwrap(), None);
    assert_eq!(
        store.commit("c", 0, &t1, None, None).await.unwrap().version,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_reset_to_a_time_starts_there() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    insert(&keel, 0..3).await;
    let raw = mongodb::Client::with_uri_str(rs.uri()).await.unwrap();
    let reply = raw
        .database(&db())
        .run_command(doc! {"ping": 1})
        .await
        .unwrap();
    let at = reply.get_timestamp("operationTime").unwrap();
    insert(&keel, 3..6).await;
    // What `keel streams reset --to TIME` stores.
    let store = MemoryCheckpointStore::new();
    store
        .commit(
            "at",
            0,
            &keel_change_streams::start_at_token(at),
            None,
            None,
        )
        .await
        .unwrap();
    let seen = Seen::default();
    let consumer = recording(keel.clone(), "at", &seen)
        .store(store.clone())
        .spawn()
        .unwrap();
    seen.wait_for("3..6", |ids| {
        all_seen(&ids.iter().map(|i| i - 3).collect::<Vec<_>>(), 3)
    })
    .await;
    // startAtOperationTime is inclusive: the write at exactly `at` (document 2) may come too.
    assert!(
        !seen.ids().contains(&0) && !seen.ids().contains(&1),
        "{:?}",
        seen.ids()
    );
    consumer.shutdown().await.unwrap();
}
