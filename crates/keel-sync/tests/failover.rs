//! Upload through a black hole (connections that stay open and forward nothing) and through a
//! primary step-down, both in the middle of draining a queue: nothing lost, nothing applied
//! twice, the last write of each document last.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_sync::{Changes, Connectivity, Store, SyncClient, SyncedCollection, Write};
use keel_testkit::{FaultProxy, TestServer};
use mongodb::bson::{Document, doc};
use support::eventually;

const DOCS: i32 = 4;
const UPDATES: i32 = 2000;

/// Queues `UPDATES` `$inc`s over the documents, `last` recording each one's order.
async fn queue_updates(notes: &SyncedCollection<Document>) {
    let all: Vec<i32> = (0..UPDATES).collect();
    for chunk in all.chunks(500) {
        let writes = chunk
            .iter()
            .map(|i| {
                Write::Update(
                    (i % DOCS).into(),
                    Changes::new().inc("n", 1).set("last", *i),
                )
            })
            .collect();
        notes.write_many(writes).await.unwrap();
    }
}

async fn insert_docs(client: &SyncClient, notes: &SyncedCollection<Document>) {
    let inserts = (0..DOCS)
        .map(|k| Write::Insert(doc! { "_id": k, "n": 0, "last": -1 }))
        .collect();
    notes.write_many(inserts).await.unwrap();
    eventually("the inserts upload", || {
        client.status().borrow().pending == 0
    })
    .await;
}

/// Every update counted once, and each document's last update applied last.
async fn check_server(uri: &str, db: &str) {
    let raw = mongodb::Client::with_uri_str(uri).await.unwrap();
    let coll = raw.database(db).collection::<Document>("notes");
    for k in 0..DOCS {
        let found = coll.find_one(doc! { "_id": k }).await.unwrap().unwrap();
        assert_eq!(found.get_i32("n").unwrap(), UPDATES / DOCS, "{found}");
        assert_eq!(
            found.get_i32("last").unwrap(),
            UPDATES - DOCS + k,
            "{found}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_mid_upload_loses_nothing_and_applies_nothing_twice() {
    // A proxy in front of a real replica set would hide its members.
    let Some(server) =
        support::testkit("puts a fault proxy (black hole) in front of a standalone server").await
    else {
        return;
    };
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let db = support::database("black_hole");
    let client = SyncClient::builder(
        support::keel(&proxy.uri()).await,
        Store::open(support::store_path("black_hole")).unwrap(),
    )
    .build()
    .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    insert_docs(&client, &notes).await;
    // Queue while cut off, then let the upload start.
    support::cut_off(&proxy, &client).await;
    queue_updates(&notes).await;
    proxy.clear().await.unwrap();
    let total = usize::try_from(UPDATES).unwrap();
    eventually("the upload is under way", || {
        client.status().borrow().pending < total - 50
    })
    .await;
    proxy.black_hole(true);
    let left = client.status().borrow().pending;
    eventually("the client notices the black hole", || {
        client.status().borrow().connectivity == Connectivity::Offline
    })
    .await;
    assert!(left > 0, "the black hole came after the queue drained");
    proxy.black_hole(false);
    // The connections swallowed by the black hole are dead; new ones work.
    proxy.reset_all();
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    check_server(&server.uri(), &db).await;
    assert!(client.quarantined().is_empty());
    assert!(client.store().conflicts().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_step_down_mid_upload_loses_nothing_and_applies_nothing_twice() {
    if support::skips_on_real_server("steps the primary of a three-member set down") {
        return;
    }
    let server = TestServer::replica_set("rs0", 3).await.unwrap();
    let db = support::database("step_down");
    let client = SyncClient::builder(
        support::keel(&server.uri()).await,
        Store::open(support::store_path("step_down")).unwrap(),
    )
    .build()
    .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    insert_docs(&client, &notes).await;
    let old_primary = server.primary().unwrap();
    queue_updates(&notes).await;
    let total = usize::try_from(UPDATES).unwrap();
    eventually("the upload is under way", || {
        client.status().borrow().pending < total - 50
    })
    .await;
    let left = client.status().borrow().pending;
    let new_primary = server.step_down().unwrap();
    assert_ne!(new_primary, old_primary);
    assert!(left > 0, "the step-down came after the queue drained");
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    check_server(&server.uri(), &db).await;
    assert!(client.quarantined().is_empty());
    assert!(client.store().conflicts().unwrap().is_empty());
}
