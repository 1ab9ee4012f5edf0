//! What reaches the handler and when the checkpoint moves: database and deployment targets,
//! the batch handler, the fallback policy, the `EveryN` / `Every` commit policies, the bounded
//! buffer, and the `After` / `At` start points.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::FutureExt;
use keel_change_streams::{
    ChangeConsumer, ChangeEvent, CheckpointStore, CommitPolicy, FailurePolicy, StartFrom,
    token_time,
};
use mongodb::bson::{Document, doc};
use support::*;
use tokio::sync::Semaphore;

/// Where an event happened and which document it was about.
fn place(event: &ChangeEvent<Document>) -> (String, String, i32) {
    let ns = event.namespace.clone().unwrap();
    (ns.db, ns.coll.unwrap_or_default(), doc_id(event).unwrap())
}

fn keeping_all(
    builder: keel_change_streams::ChangeConsumerBuilder<Document>,
    events: &Events,
) -> keel_change_streams::ChangeConsumerBuilder<Document> {
    let events = events.clone();
    builder
        .max_await_time(Duration::from_millis(100))
        .handler(move |event| {
            let events = events.clone();
            async move {
                events.push(event);
                Ok::<_, String>(())
            }
        })
}

/// Inserts `_id` 0..6 alternately into `first` and `second` (database, collection).
async fn alternate(keel: &mongokeel::Keel, first: (&str, &str), second: (&str, &str)) {
    for i in 0..6 {
        let (db, coll) = if i % 2 == 0 { first } else { second };
        keel.collection::<Document>(db, coll)
            .insert_one(doc! {"_id": i})
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_and_the_deployment_are_watched_across_collections_in_server_order() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let (db, other) = (db(), format!("{}_b", db()));
    let client = mongodb::Client::with_uri_str(rs.uri()).await.unwrap();
    client.database(&other).drop().await.unwrap();
    let in_db = Events::default();
    let database = keeping_all(
        ChangeConsumer::<Document>::builder(keel.clone(), "whole-db").database(&db),
        &in_db,
    )
    .spawn()
    .unwrap();
    // Other tests may write to a shared real server: only this test's two databases.
    let everywhere = Events::default();
    let deployment = keeping_all(
        ChangeConsumer::<Document>::builder(keel.clone(), "whole-deployment")
            .deployment()
            .pipeline([doc! {"$match": {"ns.db": {"$in": [&db, &other]}}}]),
        &everywhere,
    )
    .spawn()
    .unwrap();
    running(&database).await;
    running(&deployment).await;
    alternate(&keel, (&db, "orders"), (&db, "items")).await;
    alternate(&keel, (&db, "orders2"), (&other, "orders")).await;
    in_db.wait_for(9).await;
    everywhere.wait_for(12).await;
    let mut expected: Vec<_> = (0..6)
        .map(|i| {
            let coll = if i % 2 == 0 { "orders" } else { "items" };
            (db.clone(), coll.to_owned(), i)
        })
        .collect();
    let second: Vec<_> = (0..6)
        .map(|i| match i % 2 {
            0 => (db.clone(), "orders2".to_owned(), i),
            _ => (other.clone(), "orders".to_owned(), i),
        })
        .collect();
    let deployment_expected: Vec<_> = expected.iter().chain(&second).cloned().collect();
    expected.extend(second.into_iter().filter(|(d, _, _)| *d == db));
    assert_eq!(in_db.all().iter().map(place).collect::<Vec<_>>(), expected);
    assert_eq!(
        everywhere.all().iter().map(place).collect::<Vec<_>>(),
        deployment_expected
    );
    database.shutdown().await.unwrap();
    deployment.shutdown().await.unwrap();
    client.database(&other).drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_gets_what_was_read_at_once_in_order_and_is_retried_whole() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let batches: Arc<Mutex<Vec<Vec<i32>>>> = Arc::default();
    // The first call waits for the test, so the events written meanwhile are read ahead and
    // come as one batch; the batch holding 7 fails once and comes again whole.
    let gate = Arc::new(Semaphore::new(0));
    let store = RecordingStore::default();
    let consumer = {
        let (batches, gate) = (Arc::clone(&batches), Arc::clone(&gate));
        ChangeConsumer::<Document>::builder(keel.clone(), "batches")
            .collection(&db(), "orders")
            .max_await_time(Duration::from_millis(100))
            .store(store.clone())
            .handler_retry(fast_retry(2))
            .batch_handler(move |events: Vec<ChangeEvent<Document>>| {
                let (batches, gate) = (Arc::clone(&batches), Arc::clone(&gate));
                async move {
                    let ids: Vec<i32> = events.iter().filter_map(doc_id).collect();
                    let first = batches.lock().unwrap().is_empty();
                    let retried = batches.lock().unwrap().last() == Some(&ids);
                    batches.lock().unwrap().push(ids.clone());
                    if first {
                        gate.acquire().await.unwrap().forget();
                    }
                    if ids.contains(&7) && !retried {
                        return Err("the sink refused the batch");
                    }
                    Ok(())
                }
                .boxed()
            })
            .spawn()
            .unwrap()
    };
    running(&consumer).await;
    insert(&keel, 0..1).await;
    let waited = tokio::time::timeout(WAIT, async {
        while batches.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the first batch never came");
    insert(&keel, 1..10).await;
    gate.add_permits(1);
    until_handled(&consumer, 10).await;
    let batches = batches.lock().unwrap().clone();
    assert_eq!(batches[0], [0]);
    let failed = batches.iter().position(|b| b.contains(&7)).unwrap();
    assert_eq!(batches[failed + 1], batches[failed], "retried whole");
    let mut delivered: Vec<i32> = batches[..=failed].concat();
    delivered.extend(batches[failed + 2..].concat());
    assert_eq!(delivered, (0..10).collect::<Vec<_>>(), "{batches:?}");
    assert!(
        batches[1..].iter().any(|b| b.len() > 1),
        "events read while the handler was busy come as one batch: {batches:?}"
    );
    assert_eq!(consumer.stats().handler_errors(), 1);
    consumer.shutdown().await.unwrap();
    // Committed only at batch ends: each commit is after a whole batch.
    assert!(
        store.tokens().len() < 10,
        "{} commits",
        store.tokens().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_gets_the_event_and_the_error_after_the_attempts_and_the_consumer_goes_on() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let fallen: Arc<Mutex<Vec<(i32, String)>>> = Arc::default();
    let seen = Seen::default();
    let consumer = {
        let (fallen, seen) = (Arc::clone(&fallen), seen.clone());
        ChangeConsumer::<Document>::builder(keel.clone(), "fallback")
            .collection(&db(), "orders")
            .handler_retry(fast_retry(3))
            .on_handler_failure(FailurePolicy::Fallback(Arc::new(move |event, error| {
                let fallen = Arc::clone(&fallen);
                async move {
                    fallen
                        .lock()
                        .unwrap()
                        .push((doc_id(&event).unwrap(), error));
                    Ok(())
                }
                .boxed()
            })))
            .handler(move |event: ChangeEvent<Document>| {
                let seen = seen.clone();
                async move {
                    let id = doc_id(&event).unwrap();
                    seen.push(id, event.event_id().clone());
                    if id == 1 {
                        return Err(format!("order {id} is poison"));
                    }
                    Ok(())
                }
            })
            .spawn()
            .unwrap()
    };
    running(&consumer).await;
    insert(&keel, 0..3).await;
    until_handled(&consumer, 3).await;
    assert_eq!(seen.ids(), [0, 1, 1, 1, 2], "three attempts on 1, then on");
    assert_eq!(
        *fallen.lock().unwrap(),
        [(1, "order 1 is poison".to_owned())]
    );
    assert_eq!(consumer.stats().handler_errors(), 3);
    assert_eq!(consumer.stats().dead_lettered(), 0);
    // A fallback that fails stops the consumer, naming it.
    let failing = ChangeConsumer::<Document>::builder(keel.clone(), "fallback-fails")
        .collection(&db(), "orders")
        .handler_retry(fast_retry(1))
        .on_handler_failure(FailurePolicy::Fallback(Arc::new(|_event, _error| {
            async { Err("the fallback queue is full".to_owned()) }.boxed()
        })))
        .handler(|_e| async { Err("down") })
        .spawn()
        .unwrap();
    running(&failing).await;
    insert(&keel, 3..4).await;
    let err = stop_error(failing).await;
    assert!(
        err.to_string()
            .contains("fallback failed: the fallback queue is full"),
        "{err}"
    );
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_n_commits_at_each_nth_event_and_the_shutdown_commits_the_rest() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let store = RecordingStore::default();
    let events = Events::default();
    let consumer = keeping(keel.clone(), "every-3", &events)
        .store(store.clone())
        .commit_policy(CommitPolicy::EveryN(3))
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..7).await;
    until_handled(&consumer, 7).await;
    let all = events.all();
    let ids: Vec<Document> = all.iter().map(|e| e.event_id().clone()).collect();
    assert_eq!(store.tokens(), [ids[2].clone(), ids[5].clone()]);
    consumer.shutdown().await.unwrap();
    let tokens = store.tokens();
    assert_eq!(tokens.len(), 3, "one more at shutdown");
    // The event 6 itself, or a quiet batch's token after it.
    assert!(token_time(&tokens[2]) >= all[6].cluster_time, "{tokens:?}");
    let stored = store.load("every-3").await.unwrap().unwrap();
    assert_eq!(stored.token, tokens[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_period_commits_once_the_period_passed_and_at_shutdown() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    // A period that never passes in the test: no commit at any batch end, one at shutdown.
    let store = RecordingStore::default();
    let events = Events::default();
    let consumer = keeping(keel.clone(), "hourly", &events)
        .store(store.clone())
        .commit_policy(CommitPolicy::Every(Duration::from_secs(3600)))
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..5).await;
    until_handled(&consumer, 5).await;
    assert_eq!(
        store.tokens(),
        Vec::<Document>::new(),
        "nothing before the hour"
    );
    consumer.shutdown().await.unwrap();
    assert_eq!(store.tokens().len(), 1);
    assert!(token_time(&store.tokens()[0]) >= events.all()[4].cluster_time);
    // A period that has always passed: a commit after every event.
    let store = RecordingStore::default();
    let events = Events::default();
    let consumer = keeping(keel.clone(), "always", &events)
        .store(store.clone())
        .commit_policy(CommitPolicy::Every(Duration::ZERO))
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 5..10).await;
    // The count moves before the commit of the same event.
    let committed = tokio::time::timeout(WAIT, async {
        while store.tokens().len() < 5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(committed.is_ok(), "{} commits", store.tokens().len());
    let ids: Vec<Document> = events.all().iter().map(|e| e.event_id().clone()).collect();
    assert_eq!(
        store.tokens()[..5],
        ids[..],
        "each event committed as handled"
    );
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_handler_stops_the_get_mores_once_the_buffer_is_full() {
    let Some(rs) = testkit_only(10_000, "other tests' getMores move a real server's counter").await
    else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    let gate = Arc::new(Semaphore::new(0));
    let seen = Seen::default();
    let consumer = {
        let (gate, seen) = (Arc::clone(&gate), seen.clone());
        ChangeConsumer::<Document>::builder(keel.clone(), "slow")
            .collection(&db(), "orders")
            .max_await_time(Duration::from_millis(50))
            .batch_size(2)
            .buffer(4)
            .handler(move |event: ChangeEvent<Document>| {
                let (gate, seen) = (Arc::clone(&gate), seen.clone());
                async move {
                    gate.acquire().await.unwrap().forget();
                    seen.push(doc_id(&event).unwrap(), event.event_id().clone());
                    Ok::<_, String>(())
                }
            })
            .spawn()
            .unwrap()
    };
    running(&consumer).await;
    insert(&keel, 0..40).await;
    // An idle stream asks every 50 ms; a reader whose buffer is full asks nothing: the count
    // stands still for a whole second.
    let before = opcounter(&keel, "getmore").await;
    let stood_still = tokio::time::timeout(WAIT, async {
        let (mut last, mut still) = (opcounter(&keel, "getmore").await, 0);
        while still < 10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = opcounter(&keel, "getmore").await;
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
        last
    })
    .await;
    let Ok(frozen) = stood_still else {
        panic!("the getMores never stopped behind the stuck handler");
    };
    // Read ahead at most: the buffer (4), the handler's event, the reader's unsent one and the
    // driver's batch (2), so 7 events in about 4 non-empty getMores.
    assert!(
        frozen - before <= 8,
        "{} getMores behind a stuck handler",
        frozen - before
    );
    assert_eq!(consumer.stats().handled(), 0);
    gate.add_permits(40);
    seen.wait_for("all 40", |ids| ids.len() == 40).await;
    assert_eq!(seen.ids(), (0..40).collect::<Vec<_>>());
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_starts_after_a_token_or_at_a_cluster_time() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let events = Events::default();
    let first = keeping(keel.clone(), "first", &events).spawn().unwrap();
    running(&first).await;
    insert(&keel, 0..5).await;
    events.wait_for(5).await;
    first.shutdown().await.unwrap();
    let all = events.all();
    // After the token of event 2: 3 and 4 (exclusive).
    let after = Events::default();
    let consumer = keeping(keel.clone(), "after", &after)
        .start_from(StartFrom::After(all[2].event_id().clone()))
        .spawn()
        .unwrap();
    after.wait_for(2).await;
    assert_eq!(after.ids(), [3, 4]);
    assert_eq!(
        after.all()[0].event_id(),
        all[3].event_id(),
        "the same event ids"
    );
    consumer.shutdown().await.unwrap();
    // At the cluster time of event 3: 3 and 4 (inclusive).
    let at = Events::default();
    let consumer = keeping(keel.clone(), "at", &at)
        .start_from(StartFrom::At(all[3].cluster_time.unwrap()))
        .spawn()
        .unwrap();
    at.wait_for(2).await;
    assert_eq!(at.ids(), [3, 4]);
    consumer.shutdown().await.unwrap();
    // A stored checkpoint wins over the start point: nothing before it again.
    let store = RecordingStore::default();
    let again = Events::default();
    let consumer = keeping(keel.clone(), "stored", &again)
        .store(store.clone())
        .start_from(StartFrom::After(all[0].event_id().clone()))
        .spawn()
        .unwrap();
    again.wait_for(4).await;
    consumer.shutdown().await.unwrap();
    let later = Events::default();
    let consumer = keeping(keel.clone(), "stored", &later)
        .store(store.clone())
        .start_from(StartFrom::After(all[0].event_id().clone()))
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 5..6).await;
    later.wait_for(1).await;
    assert_eq!(later.ids(), [5]);
    consumer.shutdown().await.unwrap();
}
