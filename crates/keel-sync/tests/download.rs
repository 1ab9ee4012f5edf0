//! Download: server changes by another client reach the local view through a change stream
//! (no polling), a restarted client resumes from the checkpoint in its store, and a server
//! without change streams (a standalone, or one refusing `$changeStream`) is polled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_sync::{DownloadMode, Store, SyncClient};
use keel_testkit::FailCommand;
use mongodb::bson::{Document, doc};
use support::eventually;

/// Long enough that nothing in these tests arrives by polling.
const NEVER: Duration = Duration::from_secs(3600);

async fn other_client(uri: &str, db: &str) -> mongodb::Collection<Document> {
    mongodb::Client::with_uri_str(uri)
        .await
        .unwrap()
        .database(db)
        .collection("notes")
}

fn mode(client: &SyncClient) -> Option<DownloadMode> {
    client.downloads().first().map(|d| d.mode)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_another_client_reaches_the_local_view_through_the_change_stream() {
    let support::Deployment {
        testkit: _server,
        uri,
    } = support::replica_set().await;
    let db = support::database("stream");
    let other = other_client(&uri, &db).await;
    other
        .insert_one(doc! { "_id": 1, "owner": "ada", "text": "before" })
        .await
        .unwrap();
    let client = SyncClient::builder(
        support::keel(&uri).await,
        Store::open(support::store_path("stream")).unwrap(),
    )
    .poll_interval(NEVER)
    .build()
    .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! { "owner": "ada" });
    eventually("the download runs on a change stream", || {
        mode(&client) == Some(DownloadMode::ChangeStream)
    })
    .await;
    // The first read of the subscription, before the stream starts.
    assert!(notes.get(1).unwrap().is_some());

    other
        .insert_one(doc! { "_id": 2, "owner": "ada", "text": "new" })
        .await
        .unwrap();
    other
        .insert_one(doc! { "_id": 3, "owner": "bob", "text": "not subscribed" })
        .await
        .unwrap();
    other
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "text": "after" } })
        .await
        .unwrap();
    eventually("the insert and the update reach the local view", || {
        notes.get(2).unwrap().is_some()
            && notes
                .get(1)
                .unwrap()
                .and_then(|d| d.get_str("text").ok().map(str::to_owned))
                == Some("after".to_owned())
    })
    .await;
    // A document that leaves the subscription leaves the local view; one outside never enters.
    other
        .update_one(doc! { "_id": 2 }, doc! { "$set": { "owner": "bob" } })
        .await
        .unwrap();
    other.delete_one(doc! { "_id": 1 }).await.unwrap();
    eventually(
        "the moved and the deleted document leave the local view",
        || notes.get(2).unwrap().is_none() && notes.get(1).unwrap().is_none(),
    )
    .await;
    assert!(notes.get(3).unwrap().is_none());
    let info = client.downloads().remove(0);
    assert_eq!(
        info.full_reads, 1,
        "only the first read is a full one: {info:?}"
    );
    assert!(info.events >= 3, "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_resumes_from_its_checkpoint() {
    let support::Deployment {
        testkit: _server,
        uri,
    } = support::replica_set().await;
    let db = support::database("resume");
    let path = support::store_path("resume");
    let other = other_client(&uri, &db).await;
    {
        let client = SyncClient::builder(support::keel(&uri).await, Store::open(&path).unwrap())
            .poll_interval(NEVER)
            .build()
            .unwrap();
        let notes = client
            .collection::<Document>(&db, "notes")
            .subscribe(doc! {});
        eventually("the download runs on a change stream", || {
            mode(&client) == Some(DownloadMode::ChangeStream)
        })
        .await;
        other.insert_one(doc! { "_id": 1, "n": 1 }).await.unwrap();
        eventually("the change arrives and its checkpoint is stored", || {
            notes.get(1).unwrap().is_some()
                && client.downloads()[0].checkpointed_at.is_some()
                && client.downloads()[0].events >= 1
        })
        .await;
    }
    // Changes while no client runs.
    other.insert_one(doc! { "_id": 2, "n": 2 }).await.unwrap();
    other
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 10 } })
        .await
        .unwrap();

    let store = support::reopen(&path).await;
    let client = SyncClient::builder(support::keel(&uri).await, store)
        .poll_interval(NEVER)
        .build()
        .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    // The replica from before the restart is there at once, from the store.
    assert_eq!(notes.get(1).unwrap().unwrap().get_i32("n").unwrap(), 1);
    eventually("the changes made meanwhile arrive", || {
        notes.get(2).unwrap().is_some()
            && notes.get(1).unwrap().unwrap().get_i32("n").unwrap() == 10
    })
    .await;
    let info = client.downloads().remove(0);
    assert_eq!(info.mode, DownloadMode::ChangeStream);
    assert_eq!(
        info.full_reads, 0,
        "a stored checkpoint resumes the stream without reading the subscription again: {info:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_server_is_polled() {
    let Some(server) = support::testkit("needs a standalone server").await else {
        return;
    };
    let db = support::database("standalone");
    let client = SyncClient::builder(
        support::keel(&server.uri()).await,
        Store::open(support::store_path("standalone")).unwrap(),
    )
    .poll_interval(Duration::from_millis(50))
    .build()
    .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    let other = other_client(&server.uri(), &db).await;
    other.insert_one(doc! { "_id": 1 }).await.unwrap();
    eventually("the change arrives by polling", || {
        notes.get(1).unwrap().is_some()
    })
    .await;
    let info = client.downloads().remove(0);
    assert_eq!(info.mode, DownloadMode::Polling);
    assert!(
        info.polling_because
            .as_deref()
            .unwrap()
            .contains("standalone"),
        "{info:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_change_streams_is_polled() {
    if support::skips_on_real_server("sets a fail point (it needs enableTestCommands)") {
        return;
    }
    let support::Deployment {
        testkit: Some(server),
        uri,
    } = support::replica_set().await
    else {
        unreachable!("keel-testkit without KEEL_TEST_URI")
    };
    // 40573: what a standalone mongod answers to `$changeStream`.
    server
        .fail_command(FailCommand::new(["aggregate"]).error_code(40573))
        .unwrap();
    let db = support::database("refused");
    let client = SyncClient::builder(
        support::keel(&uri).await,
        Store::open(support::store_path("refused")).unwrap(),
    )
    .poll_interval(Duration::from_millis(50))
    .build()
    .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    eventually("the client falls back to polling", || {
        client.downloads().first().is_some_and(|info| {
            info.polling_because
                .as_deref()
                .is_some_and(|why| why.contains("refused"))
        })
    })
    .await;
    assert_eq!(mode(&client), Some(DownloadMode::Polling));
    let other = other_client(&uri, &db).await;
    other.insert_one(doc! { "_id": 1 }).await.unwrap();
    eventually("the change arrives by polling", || {
        notes.get(1).unwrap().is_some()
    })
    .await;
}
