//! The consumer's health against keel-testkit: the oplog window read from `local.oplog.rs`, a
//! stalled handler and a checkpoint far back in the window degrade the consumer's keel-health
//! component, and both recover.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{sync::Arc, time::Duration};

use keel_change_streams::{
    ChangeConsumer, CheckpointStore, CommitPolicy, ConsumerHealth, HealthLimits,
    MemoryCheckpointStore, RunningConsumer, oplog_window, token_time,
};
use keel_health::HealthStatus;
use mongodb::bson::{Document, doc};
use support::*;
use tokio::sync::Semaphore;

/// A consumer whose handler needs a permit for every event with `_id >= 1`.
fn gated(
    keel: mongokeel::Keel,
    name: &str,
    gate: &Arc<Semaphore>,
    limits: HealthLimits,
    store: &MemoryCheckpointStore,
) -> RunningConsumer {
    let gate = Arc::clone(gate);
    ChangeConsumer::<Document>::builder(keel, name)
        .store(store.clone())
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .commit_policy(CommitPolicy::EveryEvent)
        .health_limits(limits)
        .handler(move |event| {
            let gate = Arc::clone(&gate);
            async move {
                let id = doc_id(&event).unwrap_or(0);
                if id >= 1 {
                    gate.acquire().await.unwrap().forget();
                }
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap()
}

async fn health_becomes(
    consumer: &RunningConsumer,
    what: &str,
    f: impl Fn(&ConsumerHealth) -> bool,
) -> ConsumerHealth {
    let waited = tokio::time::timeout(WAIT, async {
        loop {
            let health = consumer.health();
            if f(&health) {
                return health;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| {
        panic!(
            "timed out waiting for {what}; health {:?}",
            consumer.health()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oplog_window_is_read_from_local_oplog_rs() {
    let Some(rs) = testkit_only(
        3,
        "the test needs an oplog of 3 entries to see the window move",
    )
    .await
    else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    insert(&keel, 0..5).await;
    let window = oplog_window(&keel).await.unwrap().expect("a window");
    let oplog = keel.collection::<Document>("local", "oplog.rs");
    let last = oplog
        .find_one(doc! {"o._id": 4})
        .await
        .unwrap()
        .expect("insert 4");
    assert_eq!(last.get_timestamp("ts").unwrap(), window.last);
    let first = oplog
        .find_one(doc! {"o._id": 2})
        .await
        .unwrap()
        .expect("insert 2 kept");
    assert_eq!(first.get_timestamp("ts").unwrap(), window.first);
    assert!(
        oplog.find_one(doc! {"o._id": 1}).await.unwrap().is_none(),
        "fell out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handler_degrades_the_component_until_it_moves_again() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let gate = Arc::new(Semaphore::new(0));
    let limits = HealthLimits {
        stalled_after: Duration::from_millis(300),
        check_every: Duration::from_millis(50),
        ..Default::default()
    };
    let consumer = gated(
        keel.clone(),
        "stalled",
        &gate,
        limits,
        &MemoryCheckpointStore::new(),
    );
    running(&consumer).await;
    insert(&keel, 0..3).await;
    let health = health_becomes(&consumer, "degraded", |h| {
        h.status == HealthStatus::Degraded
    })
    .await;
    assert!(
        health.reasons[0].contains("consumer 'stalled' has made no progress"),
        "{:?}",
        health.reasons
    );
    // The same sentence is keel-health's component, which makes the report Degraded.
    let component = component(&keel, "change_stream:stalled").await;
    assert!(
        component
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("no progress")),
        "{component:?}"
    );
    let report = tokio::time::timeout(WAIT, async {
        let mut reports = keel.health().subscribe();
        reports
            .wait_for(|r| r.status == HealthStatus::Degraded)
            .await
            .unwrap()
            .clone()
    })
    .await
    .expect("the health report turns Degraded");
    assert!(
        format!("{report:?}").contains("change_stream:stalled"),
        "{report:?}"
    );
    gate.add_permits(2);
    health_becomes(&consumer, "healthy again", |h| {
        h.status == HealthStatus::Healthy
    })
    .await;
    tokio::time::timeout(WAIT, async {
        while keel.health().components().iter().any(|c| c.is_degraded()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the component is healthy again");
    assert_eq!(consumer.stats().handled(), 3);
    consumer.shutdown().await.unwrap();
    assert!(
        keel.health()
            .components()
            .iter()
            .all(|c| c.name != "change_stream:stalled"),
        "a consumer that is gone is no longer a component"
    );
}

/// The keel-health component `name`, once registered.
async fn component(keel: &mongokeel::Keel, name: &str) -> keel_health::ComponentHealth {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(c) = keel
                .health()
                .components()
                .into_iter()
                .find(|c| c.name == name && c.detail.is_some())
            {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no degraded component {name}: {:?}",
            keel.health().components()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_far_back_in_the_oplog_window_degrades_the_component() {
    let Some(rs) = testkit_only(10_000, "the test needs an oplog window that starts at its own first write (a real one spans hours)").await else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    let gate = Arc::new(Semaphore::new(0));
    let limits = HealthLimits {
        stalled_after: Duration::from_secs(3600),
        check_every: Duration::from_millis(50),
        ..Default::default()
    };
    let store = MemoryCheckpointStore::new();
    let consumer = gated(keel.clone(), "behind", &gate, limits, &store);
    running(&consumer).await;
    // Event 0 is handled and committed; the handler then holds event 1.
    insert(&keel, 0..2).await;
    let first = keel
        .collection::<Document>("local", "oplog.rs")
        .find_one(doc! {"o._id": 0})
        .await
        .unwrap()
        .unwrap();
    let t0 = first.get_timestamp("ts").unwrap();
    // The window grows past the checkpoint: a later second's write (awaited on the server's
    // clock, not slept).
    let mut next = 100;
    tokio::time::timeout(WAIT, async {
        loop {
            insert(&keel, next..next + 1).await;
            next += 1;
            let w = oplog_window(&keel).await.unwrap().unwrap();
            if w.last.time > t0.time {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    let health = health_becomes(&consumer, "degraded", |h| {
        h.status == HealthStatus::Degraded
    })
    .await;
    assert!(
        health.reasons[0].contains("consumer 'behind''s checkpoint is")
            && health.reasons[0].contains("% of the oplog window"),
        "{:?}",
        health.reasons
    );
    // The checkpoint is event 0's token, whose cluster time is read from the token itself.
    let checkpoint = store.load("behind").await.unwrap().unwrap();
    assert_eq!(token_time(&checkpoint.token), Some(t0));
    // Released, the handler catches up and the checkpoint moves to the newest entry.
    gate.add_permits(1000);
    health_becomes(&consumer, "healthy again", |h| {
        h.status == HealthStatus::Healthy
    })
    .await;
    consumer.shutdown().await.unwrap();
}
