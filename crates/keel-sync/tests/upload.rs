//! Upload against keel-testkit: offline writes reach the server when it returns, a lost
//! acknowledgement is not applied twice, permanent rejections are quarantined without
//! blocking the queue, and pending operations rebase on server changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_sync::{Changes, ConflictPolicy, Connectivity, Store, SyncClient, SyncError};
use keel_testkit::FailCommand;
use mongodb::bson::{Document, doc};
use support::eventually;

async fn server_doc(uri: &str, db: &str, id: i32) -> Option<Document> {
    support::server_doc(uri, db, "notes", id).await
}

fn pending(client: &SyncClient) -> usize {
    client.status().borrow().pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_made_while_the_server_is_down_upload_when_it_returns() {
    let Some(server) = support::testkit("stops and restarts its server").await else {
        return;
    };
    let db = support::database("offline");
    let keel = support::keel(&server.uri()).await;
    let client = SyncClient::builder(keel, Store::open(support::store_path("offline")).unwrap())
        .build()
        .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    server.stop().await;
    notes
        .insert(doc! { "_id": 1, "text": "a", "n": 1 })
        .await
        .unwrap();
    notes
        .update(1, Changes::new().set("text", "b").inc("n", 2))
        .await
        .unwrap();
    notes
        .insert(doc! { "_id": 2, "text": "gone" })
        .await
        .unwrap();
    notes.delete(2).await.unwrap();
    // The local view shows every write at once.
    assert_eq!(
        notes.get(1).unwrap(),
        Some(doc! { "_id": 1, "text": "b", "n": 3 })
    );
    assert_eq!(notes.get(2).unwrap(), None);
    eventually("the status shows offline", || {
        client.status().borrow().connectivity == Connectivity::Offline
    })
    .await;
    assert_eq!(pending(&client), 4);

    server.restart().await.unwrap();
    eventually("the queue drains", || pending(&client) == 0).await;
    let on_server = server_doc(&server.uri(), &db, 1).await.unwrap();
    assert_eq!(on_server.get_str("text").unwrap(), "b");
    assert_eq!(on_server.get_i32("n").unwrap(), 3);
    let sync = on_server.get_document("_sync").unwrap();
    assert_eq!(sync.get_i64("v").unwrap(), 2);
    let tombstone = server_doc(&server.uri(), &db, 2).await.unwrap();
    assert!(
        tombstone
            .get_document("_sync")
            .unwrap()
            .get_bool("deleted")
            .unwrap()
    );
    assert_eq!(notes.get(1).unwrap().unwrap().get_i32("n").unwrap(), 3);
    // The round that drained the queue downloads next, and then records the sync time.
    eventually("a sync round completes", || {
        client.status().borrow().last_sync.is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_reply_is_lost_is_applied_once() {
    let Some(server) = support::testkit("sets a fail point (it needs enableTestCommands)").await
    else {
        return;
    };
    let db = support::database("lost_ack");
    let keel = support::keel(&server.uri()).await;
    let client = SyncClient::builder(keel, Store::open(support::store_path("lost_ack")).unwrap())
        .build()
        .unwrap();
    // ServerWins: were an operation after a lost reply taken for a conflict, its `$inc` would be
    // dropped and the count below would fall short.
    let notes = client
        .collection::<Document>(&db, "notes")
        .policy(ConflictPolicy::ServerWins)
        .subscribe(doc! {});
    notes.insert(doc! { "_id": 1, "n": 0 }).await.unwrap();
    eventually("the insert uploads", || pending(&client) == 0).await;
    // The write applies, then the reply is an error: what a crash between the server's apply
    // and the client's acknowledgement looks like from the client.
    server
        .fail_command(
            FailCommand::new(["update"])
                .write_concern_error(
                    doc! { "code": 64, "errmsg": "waiting for replication timed out" },
                )
                .times(4),
        )
        .unwrap();
    for _ in 0..3 {
        notes.update(1, Changes::new().inc("n", 1)).await.unwrap();
    }
    eventually("the updates upload", || pending(&client) == 0).await;
    let on_server = server_doc(&server.uri(), &db, 1).await.unwrap();
    assert_eq!(on_server.get_i32("n").unwrap(), 3, "{on_server}");
    assert_eq!(notes.get(1).unwrap().unwrap().get_i32("n").unwrap(), 3);
    // An operation found applied by its mark is still this client's own write: the ones after
    // it, based on the version before it, are not conflicts.
    assert!(client.store().conflicts().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_operation_is_quarantined_and_the_queue_moves_on() {
    let server = support::server().await;
    let db = support::database("quarantine");
    let raw = server.raw().await;
    raw.database(&db)
        .collection::<Document>("notes")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "email": 1 })
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    let client = server.client("quarantine").await.build().unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    notes
        .insert(doc! { "_id": 1, "email": "ada@example.com" })
        .await
        .unwrap();
    notes
        .insert(doc! { "_id": 2, "email": "ada@example.com" })
        .await
        .unwrap();
    notes
        .insert(doc! { "_id": 3, "email": "grace@example.com" })
        .await
        .unwrap();
    eventually("the queue drains", || pending(&client) == 0).await;
    let quarantined = client.quarantined();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        quarantined[0].operation.doc_id,
        mongodb::bson::Bson::Int32(2)
    );
    assert_eq!(quarantined[0].code, Some(11000));
    assert!(server.doc(&db, "notes", 3).await.is_some(), "not blocked");
    assert!(server.doc(&db, "notes", 2).await.is_none());
    assert_eq!(client.status().borrow().quarantined, 1);
    assert_eq!(client.store().quarantined().unwrap().len(), 1);
    // The quarantined insert left the local view; fix the data and retry it.
    assert_eq!(notes.get(2).unwrap(), None);
    notes.delete(1).await.unwrap();
    eventually("the delete uploads", || pending(&client) == 0).await;
    // A tombstone keeps its fields (and so its unique key): discard instead of retrying.
    let seq = quarantined[0].operation.seq;
    client.discard_quarantined(seq).await.unwrap();
    assert!(client.quarantined().is_empty());
    assert!(matches!(
        client.discard_quarantined(seq).await,
        Err(SyncError::NotQuarantined(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_uploads_its_queue_by_itself() {
    let server = support::server().await;
    let db = support::database("restart");
    let path = support::store_path("restart");
    {
        let keel = support::lazy_keel(support::NOWHERE).await;
        let client = SyncClient::builder(keel, Store::open(&path).unwrap())
            .build()
            .unwrap();
        let notes = client
            .collection::<Document>(&db, "notes")
            .subscribe(doc! {});
        for i in 0..5 {
            notes.insert(doc! { "_id": i, "i": i }).await.unwrap();
        }
        assert_eq!(client.store().pending().unwrap().len(), 5);
    }
    // The first client's task lets go of the store once it notices the client is gone.
    let store = support::reopen(&path).await;
    let keel = support::keel(&server.uri).await;
    let client = SyncClient::builder(keel, store).build().unwrap();
    assert_eq!(pending(&client), 5);
    // No local write, no subscribe: the queue uploads by itself.
    eventually("the queue drains", || pending(&client) == 0).await;
    for i in 0..5 {
        assert!(server.doc(&db, "notes", i).await.is_some());
    }
}
