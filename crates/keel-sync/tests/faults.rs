//! Upload under faults: connections reset mid-batch by the fault proxy and a server restart;
//! nothing lost, nothing applied twice, per-document order kept. Also the status watch, the
//! health check and the local-change stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures_util::StreamExt as _;
use keel_health::HealthStatus;
use keel_sync::{Changes, Store, SyncClient, SyncHealthCheck};
use keel_testkit::FaultProxy;
use mongodb::bson::{Document, doc};
use support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_through_resets_and_a_restart_apply_every_operation_once_in_order() {
    let Some(server) =
        support::testkit("resets connections at a fault proxy and restarts its server").await
    else {
        return;
    };
    let proxy = std::sync::Arc::new(FaultProxy::start(server.addr()).await.unwrap());
    let db = support::database("faults");
    let keel = support::keel(&proxy.uri()).await;
    let client = SyncClient::builder(keel, Store::open(support::store_path("faults")).unwrap())
        .build()
        .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    for k in 0..4 {
        notes
            .insert(doc! { "_id": k, "n": 0, "last": -1 })
            .await
            .unwrap();
    }
    let chaos = {
        let proxy_reset = proxy.clone();
        tokio::spawn(async move {
            for _ in 0..15 {
                tokio::time::sleep(Duration::from_millis(15)).await;
                proxy_reset.reset_all();
            }
        })
    };
    for i in 0..200 {
        // `last` records the order: it must end as the last write of each document.
        notes
            .update(i % 4, Changes::new().inc("n", 1).set("last", i))
            .await
            .unwrap();
        if i == 100 {
            server.stop().await;
            server.restart().await.unwrap();
        }
    }
    chaos.await.unwrap();
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let coll = raw.database(&db).collection::<Document>("notes");
    for k in 0..4 {
        let found = coll.find_one(doc! { "_id": k }).await.unwrap().unwrap();
        assert_eq!(found.get_i32("n").unwrap(), 50, "{found}");
        assert_eq!(found.get_i32("last").unwrap(), 196 + k, "{found}");
    }
    assert!(client.quarantined().is_empty());
    assert!(client.store().conflicts().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_health_and_the_change_stream_follow_the_queue() {
    let Some(server) = support::testkit("stops and restarts its server").await else {
        return;
    };
    let db = support::database("status");
    let keel = support::keel(&server.uri()).await;
    let client = SyncClient::builder(
        keel.clone(),
        Store::open(support::store_path("status")).unwrap(),
    )
    .app_name("notes")
    .max_undrained(Duration::ZERO)
    .build()
    .unwrap();
    let component = |keel: &mongokeel::Keel| {
        keel.health()
            .components()
            .into_iter()
            .find(|c| c.name == "sync:notes")
    };
    assert!(component(&keel).is_some_and(|c| !c.is_degraded()));
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    let mut changes = Box::pin(notes.watch());
    let check = SyncHealthCheck::new(client.status(), Duration::ZERO);
    server.stop().await;
    notes.insert(doc! { "_id": 1, "text": "x" }).await.unwrap();
    let change = tokio::time::timeout(support::PATIENCE, changes.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.id, mongodb::bson::Bson::Int32(1));
    assert_eq!(change.doc, Some(doc! { "_id": 1, "text": "x" }));
    {
        let status = client.status().borrow().clone();
        assert_eq!(status.pending, 1);
        assert!(status.oldest_pending_since.is_some());
        assert!(status.to_string().contains("pending 1"), "{status}");
    }
    eventually("the queue counts as not drained", || {
        check.check().0 == HealthStatus::Degraded
    })
    .await;
    assert!(check.check().1.unwrap().contains("wait for upload"));
    eventually("the keel-health component is degraded", || {
        component(&keel).is_some_and(|c| c.is_degraded())
    })
    .await;
    let detail = component(&keel).unwrap().detail.unwrap();
    assert!(detail.contains("has not drained"), "{detail}");
    server.restart().await.unwrap();
    // The round that drains the queue downloads after uploading: the last sync time comes
    // after the pending count reaches zero.
    eventually("the queue drains and a sync round completes", || {
        let status = client.status().borrow().clone();
        status.pending == 0 && status.last_sync.is_some()
    })
    .await;
    assert_eq!(check.check(), (HealthStatus::Healthy, None));
    eventually("the keel-health component is healthy again", || {
        component(&keel).is_some_and(|c| !c.is_degraded())
    })
    .await;
    let status = client.status().borrow().clone();
    assert!(status.oldest_pending_since.is_none());
    drop((client, notes, changes));
    eventually("a dropped client removes its component", || {
        component(&keel).is_none()
    })
    .await;
}
