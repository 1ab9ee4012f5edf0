//! Failover on a three-member testkit replica set: writes keep flowing while the primary steps
//! down; idempotent inserts land exactly once, and a non-idempotent `$inc` is never applied more
//! often than the callers were told (nor less).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use keel_integration::{skip_against_real, stored_ids, test_config, wait_for_count};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_primary_step_down_without_loss_or_duplicate() {
    if skip_against_real("step down the primary of a three-member replica set") {
        return;
    }
    let rs = TestServer::replica_set("rs0", 3).await.unwrap();
    let keel = Keel::builder(test_config(&rs.uri())).build().await.unwrap();
    let db = "keel_it_failover";
    let events = keel.collection::<Document>(db, "events");
    let counters = keel.collection::<Document>(db, "counters");
    counters
        .insert_one(doc! { "_id": "hits", "n": 0_i64 })
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (events, counters, stop) = (events.clone(), counters.clone(), Arc::clone(&stop));
        async move {
            let mut acknowledged = Vec::new();
            let (mut incs_acked, mut incs_failed) = (0_i64, 0_i64);
            let mut id = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                if events.insert_one(doc! { "_id": id }).await.is_ok() {
                    acknowledged.push(id);
                }
                match counters
                    .update_one(doc! { "_id": "hits" }, doc! { "$inc": { "n": 1 } })
                    .await
                {
                    Ok(_) => incs_acked += 1,
                    Err(_) => incs_failed += 1,
                }
            }
            (acknowledged, incs_acked, incs_failed)
        }
    });

    wait_for_count(&events, 20).await;
    let old = rs.primary().unwrap();
    let new = rs.step_down().unwrap();
    assert_ne!(old, new);
    let after = events.count_documents(doc! {}).await.unwrap();
    wait_for_count(&events, after + 20).await;
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, incs_acked, incs_failed) = writer.await.unwrap();

    let mut stored: Vec<i64> = stored_ids(&events).await;
    stored.sort_unstable();
    let total = stored.len();
    stored.dedup();
    assert_eq!(stored.len(), total, "no insert is stored twice");
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| stored.binary_search(id).is_err())
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let n = counters
        .find_one(doc! { "_id": "hits" })
        .await
        .unwrap()
        .unwrap()
        .get_i64("n")
        .unwrap();
    assert!(
        (incs_acked..=incs_acked + incs_failed).contains(&n),
        "$inc applied {n} times for {incs_acked} acknowledged and {incs_failed} failed calls"
    );
    eprintln!(
        "{} inserts and {incs_acked} $inc acknowledged across the step-down ({incs_failed} failed)",
        acknowledged.len()
    );
}
