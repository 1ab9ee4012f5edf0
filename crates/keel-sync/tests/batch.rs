//! The batched no-conflict upload path against keel-testkit: a batch in which one document was
//! changed on the server meanwhile (by a writer outside keel-sync that bumps `_sync.v`, as the
//! README asks) still applies every operation exactly once and settles that document by the
//! collection's policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_sync::{Changes, ConflictPolicy, Connectivity, Store, SyncClient, SyncedCollection};
use keel_testkit::{FaultProxy, TestServer};
use mongodb::bson::{Document, doc};
use support::eventually;

const DOCS: i32 = 5;

/// A client whose `DOCS` inserts are on the server, now cut off at the proxy.
struct Offline {
    server: TestServer,
    proxy: FaultProxy,
    db: String,
    client: SyncClient,
    notes: SyncedCollection<Document>,
}

/// `None` against `KEEL_TEST_URI` (after saying why): the fault proxy needs keel-testkit.
async fn offline_with_uploaded_docs(name: &str) -> Option<Offline> {
    let server = support::testkit("cuts the client off at a fault proxy").await?;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let db = support::database(name);
    let client = SyncClient::builder(
        support::keel(&proxy.uri()).await,
        Store::open(support::store_path(name)).unwrap(),
    )
    // No download between the reconnect and the upload: the replica still has the version
    // before the outside write, so the batch's statement for that document matches nothing.
    .change_streams(false)
    .poll_interval(Duration::from_secs(3600))
    .build()
    .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .policy(ConflictPolicy::ClientWins)
        .subscribe(doc! {});
    for id in 1..=DOCS {
        notes.insert(doc! { "_id": id, "n": 0 }).await.unwrap();
    }
    eventually("the inserts upload", || {
        client.status().borrow().pending == 0
    })
    .await;
    support::cut_off(&proxy, &client).await;
    Some(Offline {
        server,
        proxy,
        db,
        client,
        notes,
    })
}
const ROUNDS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_meeting_an_outside_write_applies_every_operation_once() {
    let Some(Offline {
        server,
        proxy,
        db,
        client,
        notes,
    }) = offline_with_uploaded_docs("batch_outside").await
    else {
        return;
    };
    for _ in 0..ROUNDS {
        for id in 1..=DOCS {
            notes.update(id, Changes::new().inc("n", 1)).await.unwrap();
        }
    }
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let coll = raw.database(&db).collection::<Document>("notes");
    let outside = coll
        .update_one(
            doc! { "_id": 3 },
            doc! { "$set": { "m": 1 }, "$inc": { "_sync.v": 1 } },
        )
        .await
        .unwrap();
    assert_eq!(outside.modified_count, 1);

    proxy.clear().await.unwrap();
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    for id in 1..=DOCS {
        let found = coll.find_one(doc! { "_id": id }).await.unwrap().unwrap();
        assert_eq!(found.get_i32("n").unwrap(), ROUNDS, "{found}");
        assert_eq!(
            notes.get(id).unwrap().unwrap().get_i32("n").unwrap(),
            ROUNDS
        );
        if id == 3 {
            // ClientWins applies the client's change on the server's document: the outside
            // field stays.
            assert_eq!(found.get_i32("m").unwrap(), 1, "{found}");
        }
    }
    let conflicts = client.store().conflicts().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].operation.doc_id, mongodb::bson::Bson::Int32(3));
}

/// The server's count of `find` commands (`serverStatus.opcounters.query`).
async fn finds(raw: &mongodb::Client) -> i64 {
    let status = raw
        .database("admin")
        .run_command(doc! { "serverStatus": 1 })
        .await
        .unwrap();
    let counters = status.get_document("opcounters").unwrap();
    match counters.get("query").unwrap() {
        mongodb::bson::Bson::Int32(n) => i64::from(*n),
        mongodb::bson::Bson::Int64(n) => *n,
        other => panic!("opcounters.query is {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_updates_without_conflict_upload_without_reading_the_documents() {
    const OPS: i32 = 60;
    // And counts the server's `find`s, which other tests on a shared server would move.
    let Some(server) = support::testkit("stops and restarts its server").await else {
        return;
    };
    let db = support::database("batch_no_read");
    let client = SyncClient::builder(
        support::keel(&server.uri()).await,
        Store::open(support::store_path("batch_no_read")).unwrap(),
    )
    .change_streams(false)
    .poll_interval(Duration::from_secs(3600))
    .build()
    .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    for id in 1..=DOCS {
        notes.insert(doc! { "_id": id, "n": 0 }).await.unwrap();
    }
    eventually("the inserts upload", || {
        client.status().borrow().pending == 0
    })
    .await;
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    server.stop().await;
    eventually("the client goes offline", || {
        client.status().borrow().connectivity == Connectivity::Offline
    })
    .await;
    for i in 0..OPS {
        notes
            .update(i % DOCS + 1, Changes::new().inc("n", 1))
            .await
            .unwrap();
    }
    server.restart().await.unwrap();
    let before = finds(&raw).await;
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    let read = finds(&raw).await - before;
    // Reading each document before its write (the path for conflicts) would be one find per
    // operation; a sync round's download poll of the collection may add one or two.
    assert!(read <= 2, "{read} finds for {OPS} conflict-free operations");
    let coll = raw.database(&db).collection::<Document>("notes");
    for id in 1..=DOCS {
        let found = coll.find_one(doc! { "_id": id }).await.unwrap().unwrap();
        assert_eq!(found.get_i32("n").unwrap(), OPS / DOCS, "{found}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_too_large_for_a_batch_command_uploads_alone() {
    let server = support::server().await;
    let db = support::database("batch_large");
    let client = server.client("batch_large").await.build().unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    // Over the batch's 4 MiB of replacements: its updates take the read-then-write path, and the
    // small document's updates between them still upload.
    let text = "x".repeat(5 * 1024 * 1024);
    notes
        .insert(doc! { "_id": 1, "text": text, "n": 0 })
        .await
        .unwrap();
    notes.insert(doc! { "_id": 2, "n": 0 }).await.unwrap();
    eventually("the inserts upload", || {
        client.status().borrow().pending == 0
    })
    .await;
    for id in [1, 2, 1, 2] {
        notes.update(id, Changes::new().inc("n", 1)).await.unwrap();
    }
    eventually("the updates upload", || {
        client.status().borrow().pending == 0
    })
    .await;
    let raw = server.raw().await;
    let coll = raw.database(&db).collection::<Document>("notes");
    for id in [1, 2] {
        let found = coll.find_one(doc! { "_id": id }).await.unwrap().unwrap();
        assert_eq!(found.get_i32("n").unwrap(), 2, "document {id}");
    }
    assert!(client.store().quarantined().unwrap().is_empty());
}

/// The outside write meets the first statement of document 1, whose 19 later updates follow in
/// the same batch: the batch's one read settles that conflict and the rest upload as a batch
/// again, without a read each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_early_in_a_batch_costs_one_read_not_one_per_later_operation() {
    const PER_DOC: i32 = 20;
    let Some(Offline {
        server,
        proxy,
        db,
        client,
        notes,
    }) = offline_with_uploaded_docs("batch_early_conflict").await
    else {
        return;
    };
    for _ in 0..PER_DOC {
        for id in 1..=DOCS {
            notes.update(id, Changes::new().inc("n", 1)).await.unwrap();
        }
    }
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let coll = raw.database(&db).collection::<Document>("notes");
    coll.update_one(
        doc! { "_id": 1 },
        doc! { "$set": { "m": 1 }, "$inc": { "_sync.v": 1 } },
    )
    .await
    .unwrap();
    let before = finds(&raw).await;
    proxy.clear().await.unwrap();
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    let read = finds(&raw).await - before;
    // One read of the batch's documents after the short count; a sync round's download poll
    // may add one or two. Settling each later operation of document 1 with its own read was
    // one find each (PER_DOC - 1 more).
    assert!(read <= 3, "{read} finds for one conflict in a batch");
    for id in 1..=DOCS {
        let found = coll.find_one(doc! { "_id": id }).await.unwrap().unwrap();
        assert_eq!(found.get_i32("n").unwrap(), PER_DOC, "{found}");
    }
    assert_eq!(
        coll.find_one(doc! { "_id": 1 })
            .await
            .unwrap()
            .unwrap()
            .get_i32("m")
            .unwrap(),
        1
    );
    let conflicts = client.store().conflicts().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
}
