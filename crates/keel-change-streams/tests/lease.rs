//! Leases: two instances of one consumer, only the holder consumes; the standby takes over
//! from the checkpoint when the holder dies; the dead holder's late commit is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_change_streams::{
    ChangeConsumer, CheckpointStore, CommitError, CommitPolicy, ConsumerStatus, LeaseConfig,
    MongoCheckpointStore,
};
use mongodb::bson::{Document, doc};
use support::*;

fn instance(
    keel: &mongokeel::Keel,
    store: &MongoCheckpointStore,
    owner: &str,
    seen: &Seen,
) -> keel_change_streams::RunningConsumer {
    let seen = seen.clone();
    ChangeConsumer::<Document>::builder(keel.clone(), "leased")
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .commit_policy(CommitPolicy::EveryEvent)
        .store(store.clone())
        .lease(LeaseConfig {
            owner: owner.to_owned(),
            duration: Duration::from_millis(1500),
            renew_every: Duration::from_millis(200),
        })
        .handler(move |event| {
            let seen = seen.clone();
            async move {
                let id = doc_id(&event).unwrap();
                seen.push(id, event.event_id().clone());
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_the_checkpoint_and_the_zombie_cannot_commit() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let store = MongoCheckpointStore::new(keel.clone(), &db());
    let (seen_a, seen_b) = (Seen::default(), Seen::default());
    let a = instance(&keel, &store, "a", &seen_a);
    reaches(&a, ConsumerStatus::Running).await;
    let b = instance(&keel, &store, "b", &seen_b);
    reaches(&b, ConsumerStatus::WaitingForLease).await;
    insert(&keel, 0..10).await;
    seen_a
        .wait_for("a handles 0..10", |ids| all_seen(ids, 10))
        .await;
    assert!(
        seen_b.ids().is_empty(),
        "the standby consumed: {:?}",
        seen_b.ids()
    );
    // The holder dies without releasing its lease.
    a.abort();
    insert(&keel, 10..20).await;
    reaches(&b, ConsumerStatus::Running).await;
    seen_b
        .wait_for("b handles 10..20", |ids| (10..20).all(|i| ids.contains(&i)))
        .await;
    let mut union = seen_a.ids();
    union.extend(seen_b.ids());
    assert!(all_seen(&union, 20), "missing: {union:?}");
    // The old holder's fencing token (1) no longer commits.
    let current = store.load("leased").await.unwrap().unwrap();
    let late = store
        .commit(
            "leased",
            current.version,
            &doc! {"_data": "zombie"},
            None,
            Some(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(late, CommitError::Fenced { fence: 1, .. }),
        "{late}"
    );
    assert_eq!(
        store.load("leased").await.unwrap().unwrap().token,
        current.token
    );
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_was_taken_stops_handling() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let store = MongoCheckpointStore::new(keel.clone(), &db());
    let seen = Seen::default();
    let a = instance(&keel, &store, "a", &seen);
    reaches(&a, ConsumerStatus::Running).await;
    // Someone takes the lease over (as after a partition that outlasted it).
    keel.collection::<Document>(&db(), "keel_checkpoints")
        .update_one(
            doc! {"_id": "leased"},
            doc! {"$set": {"lease.owner": "other"}, "$inc": {"lease.fencing": 1_i64}},
        )
        .await
        .unwrap();
    let err = tokio::time::timeout(WAIT, a.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("lost its lease"), "{err}");
}
