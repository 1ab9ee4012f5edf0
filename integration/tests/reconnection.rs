//! Reconnection after a server restart: writes keep coming while the server goes away and comes
//! back, and every write the caller was told succeeded is in the database exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use keel_integration::{Deployment, PATIENCE, stored_ids, test_config, wait_for_count};
use mongodb::bson::{Document, doc};
use mongokeel::{ConnectionState, Keel};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_across_a_restart() {
    let deployment = Deployment::start().await;
    let Some(server) = deployment.testkit("stop and restart the server") else {
        return;
    };
    let keel = Keel::builder(test_config(&deployment.uri()))
        .build()
        .await
        .unwrap();
    let db = deployment.database("restart");
    let events = keel.collection::<Document>(&db, "events");

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (events, stop) = (events.clone(), Arc::clone(&stop));
        async move {
            let (mut acknowledged, mut failed) = (Vec::new(), 0_u32);
            let mut id = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                match events.insert_one(doc! { "_id": id, "n": id }).await {
                    Ok(_) => acknowledged.push(id),
                    Err(err) => {
                        assert!(
                            err.class().is_infrastructure(),
                            "only the outage may fail a write: {err}"
                        );
                        failed += 1;
                    }
                }
                tokio::task::yield_now().await;
            }
            (acknowledged, failed)
        }
    });

    let mut state = keel.subscribe();
    wait_for_count(&events, 20).await;
    server.stop().await;
    tokio::time::timeout(
        PATIENCE,
        state.wait_for(|s| *s != ConnectionState::Connected),
    )
    .await
    .expect("the client notices the server is gone")
    .unwrap();
    server.restart().await.unwrap();
    tokio::time::timeout(
        PATIENCE,
        state.wait_for(|s| *s == ConnectionState::Connected),
    )
    .await
    .expect("the client reconnects by itself")
    .unwrap();
    let before = events.count_documents(doc! {}).await.unwrap();
    wait_for_count(&events, before + 20).await;
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, failed) = writer.await.unwrap();

    let stored: Vec<i64> = stored_ids(&events).await;
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let mut unique = stored.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "no write is stored twice");
    eprintln!(
        "{} writes acknowledged, {failed} failed during the outage, all acknowledged present",
        acknowledged.len()
    );
}
