//! Events over 16 MB with `split_large_events()` against keel-testkit: the fragments reach the
//! handler as one event (also after a resume between fragments), and a consumer stopped between
//! fragments has its checkpoint before the event, so a restart delivers it whole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_change_streams::{
    ChangeConsumer, ChangeEvent, CheckpointStore, CommitPolicy, MemoryCheckpointStore,
    OperationType, RunningConsumer, StartFrom, oplog_window, token_time,
};
use keel_testkit::FailCommand;
use mongodb::{
    bson::{Document, Timestamp, doc},
    options::{FullDocumentBeforeChangeType, FullDocumentType},
};
use support::*;

const NINE_MB: usize = 9 * 1024 * 1024;

fn consumer(
    keel: &mongokeel::Keel,
    store: &MemoryCheckpointStore,
    from: Timestamp,
    events: &Events,
) -> RunningConsumer {
    let events = events.clone();
    ChangeConsumer::<Document>::builder(keel.clone(), "big")
        .collection(&db(), "big")
        .split_large_events()
        .full_document(FullDocumentType::Required)
        .full_document_before_change(FullDocumentBeforeChangeType::Required)
        .max_await_time(Duration::from_millis(100))
        .commit_policy(CommitPolicy::EveryEvent)
        .start_from(StartFrom::At(from))
        .store(store.clone())
        .handler(move |event| {
            let events = events.clone();
            async move {
                events.push(event);
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap()
}

/// A collection with pre- and post-images holding a 9 MB document, then (after the returned
/// start time) a small insert and an update whose event is about 27 MB.
async fn large_update(keel: &mongokeel::Keel) -> Timestamp {
    let name = db();
    keel.run(keel_core::Operation::command("create", true, move |c| {
        let name = name.clone();
        async move {
            c.database(&name)
                .run_command(
                    doc! {"create": "big", "changeStreamPreAndPostImages": {"enabled": true}},
                )
                .await
        }
    }))
    .await
    .unwrap();
    let big = keel.collection::<Document>(&db(), "big");
    big.insert_one(doc! {"_id": 1, "a": "x".repeat(NINE_MB)})
        .await
        .unwrap();
    let last = oplog_window(keel).await.unwrap().unwrap().last;
    big.insert_one(doc! {"_id": 2}).await.unwrap();
    big.update_one(doc! {"_id": 1}, doc! {"$set": {"a": "y".repeat(NINE_MB)}})
        .await
        .unwrap();
    Timestamp {
        time: last.time,
        increment: last.increment + 1,
    }
}

fn assert_whole(event: &ChangeEvent<Document>) {
    assert_eq!(event.operation, OperationType::Update);
    assert!(!event.raw.contains_key("splitEvent"));
    assert_eq!(
        event.full_document.as_ref().unwrap().get_str("a").unwrap(),
        "y".repeat(NINE_MB)
    );
    assert_eq!(
        event
            .full_document_before_change
            .as_ref()
            .unwrap()
            .get_str("a")
            .unwrap()
            .len(),
        NINE_MB
    );
    assert!(event.update_description.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_reach_the_handler_as_one_event_across_a_resume_between_them() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let from = large_update(&keel).await;
    // The first getMore (after the first batch ended inside the event) loses its connection:
    // the stream resumes from the first fragment's token.
    rs.fail_command(FailCommand::new(["getMore"]).times(1).close_connection())
        .unwrap();
    let store = MemoryCheckpointStore::new();
    let events = Events::default();
    let running = consumer(&keel, &store, from, &events);
    events.wait_for(2).await;
    let seen = events.all();
    assert_eq!(seen[0].document_key, Some(doc! {"_id": 2}));
    assert_whole(&seen[1]);
    running.shutdown().await.unwrap();
    // Committed at or after the event (its id, the last fragment's token, or a later
    // heartbeat), never at a fragment before the last.
    let checkpoint = store.load("big").await.unwrap().unwrap();
    assert!(
        token_time(&checkpoint.token) >= seen[1].cluster_time,
        "{checkpoint:?}"
    );
    assert_eq!(events.all().len(), 2, "each event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stopped_between_fragments_restarts_before_the_event() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let from = large_update(&keel).await;
    // The first batch holds the small insert and the first fragment; the getMore for the
    // second fails with a non-resumable error and the consumer stops.
    rs.fail_command(FailCommand::new(["getMore"]).times(1).error_code(2))
        .unwrap();
    let store = MemoryCheckpointStore::new();
    let events = Events::default();
    let stopped = tokio::time::timeout(WAIT, consumer(&keel, &store, from, &events).wait())
        .await
        .expect("the failed getMore stops the consumer");
    assert!(stopped.is_err(), "stopped by the failed getMore");
    let handled = events.all();
    assert_eq!(handled.len(), 1, "only the small insert: {handled:?}");
    let checkpoint = store.load("big").await.unwrap().unwrap();
    assert_eq!(
        &checkpoint.token,
        handled[0].event_id(),
        "never inside the split event"
    );
    // Restarted from that checkpoint: the update, whole.
    let again = Events::default();
    let running = consumer(&keel, &store, from, &again);
    again.wait_for(1).await;
    assert_whole(&again.all()[0]);
    running.shutdown().await.unwrap();
}
