//! Uploads in transactions where the deployment has them (a keel-testkit replica set, or
//! `KEEL_TEST_URI`), and the transaction-free scheme where it has none (a standalone): the
//! same queue — first inserts, updates, a delete, and an update that meets a change made on the
//! server meanwhile — reaches the server with every operation applied exactly once both ways.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::TryStreamExt as _;
use keel_sync::{Changes, ConflictPolicy, Store, SyncClient};
use keel_testkit::FailCommand;
use mongodb::bson::{Document, doc};
use support::{Deployment, eventually};

const DOCS: i32 = 4;
const ROUNDS: i32 = 5;

/// Queues, offline, `DOCS` inserts and `ROUNDS` `$inc`s of each, then a delete of the last
/// document; returns the store file.
async fn queue_offline(db: &str) -> std::path::PathBuf {
    let path = support::store_path("transactions");
    let (client, notes) = offline(Store::open(&path).unwrap(), db).await;
    for k in 0..DOCS {
        notes.insert(doc! { "_id": k, "n": 0 }).await.unwrap();
    }
    for _ in 0..ROUNDS {
        for k in 0..DOCS {
            notes.update(k, Changes::new().inc("n", 1)).await.unwrap();
        }
    }
    notes.delete(DOCS - 1).await.unwrap();
    assert_eq!(
        client.status().borrow().pending,
        1 + (DOCS * (ROUNDS + 1)) as usize
    );
    drop((client, notes));
    path
}

async fn offline(store: Store, db: &str) -> (SyncClient, keel_sync::SyncedCollection<Document>) {
    let client = SyncClient::builder(support::lazy_keel(support::NOWHERE).await, store)
        .build()
        .unwrap();
    let notes = client
        .collection::<Document>(db, "notes")
        .policy(ConflictPolicy::ClientWins)
        .subscribe(doc! {});
    (client, notes)
}

/// Opens the queued store on `deployment` and waits until it drained; checks the server.
async fn upload(deployment: &Deployment, db: &str, path: &std::path::Path) -> SyncClient {
    let client = SyncClient::builder(
        support::keel(&deployment.uri).await,
        support::reopen(path).await,
    )
    .build()
    .unwrap();
    let _notes = client
        .collection::<Document>(db, "notes")
        .policy(ConflictPolicy::ClientWins)
        .subscribe(doc! {});
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    for k in 0..DOCS {
        let found = deployment.doc(db, "notes", k).await.unwrap();
        assert_eq!(
            found.get_i32("n").unwrap(),
            ROUNDS,
            "each $inc once: {found}"
        );
        let sync = found.get_document("_sync").unwrap();
        assert_eq!(
            sync.get_bool("deleted").unwrap_or(false),
            k == DOCS - 1,
            "{found}"
        );
    }
    assert!(client.quarantined().is_empty());
    client
}

/// The oplog entries of committed transactions touching `db` (keel-testkit lists each commit
/// as one `applyOps` entry, as mongod).
async fn transactions_in_oplog(deployment: &Deployment, db: &str) -> usize {
    let entries: Vec<Document> = deployment
        .raw()
        .await
        .database("local")
        .collection::<Document>("oplog.rs")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    entries
        .iter()
        .filter(|entry| {
            entry
                .get_document("o")
                .is_ok_and(|o| o.contains_key("applyOps"))
                && entry.to_string().contains(db)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_set_uploads_the_queue_in_transactions_exactly_once() {
    let deployment = support::replica_set().await;
    let db = support::database("txn");
    let path = queue_offline(&db).await;
    let client = upload(&deployment, &db, &path).await;
    assert_eq!(client.uses_transactions(), Some(true));
    if deployment.testkit.is_some() {
        // The first inserts, the updates and the delete: one batch, one commit.
        assert_eq!(transactions_in_oplog(&deployment, &db).await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_uploads_the_queue_without_transactions_exactly_once() {
    let Some(server) = support::testkit("needs a standalone server").await else {
        return;
    };
    let deployment = Deployment {
        uri: server.uri(),
        testkit: Some(server),
    };
    let db = support::database("no_txn");
    let path = queue_offline(&db).await;
    let client = upload(&deployment, &db, &path).await;
    assert_eq!(client.uses_transactions(), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_can_be_turned_off() {
    let deployment = support::replica_set().await;
    let client = deployment
        .client("txn_off")
        .await
        .transactions(false)
        .build()
        .unwrap();
    assert_eq!(client.uses_transactions(), Some(false));
    let db = support::database("txn_off");
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    notes.insert(doc! { "_id": 1 }).await.unwrap();
    eventually("the insert uploads", || {
        client.status().borrow().pending == 0
    })
    .await;
    assert!(deployment.doc(&db, "notes", 1).await.is_some());
    if deployment.testkit.is_some() {
        assert_eq!(transactions_in_oplog(&deployment, &db).await, 0);
    }
}

/// A conflict settled inside the transaction, a transient transaction error on the statements
/// (a write conflict: the transaction runs again) and a commit whose outcome is unknown (the
/// commit is sent again): each operation still applied once, the conflict logged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_retried_after_transient_errors_applies_each_operation_once() {
    if support::skips_on_real_server("sets fail points (they need enableTestCommands)") {
        return;
    }
    let deployment = support::replica_set().await;
    let server = deployment.testkit.as_ref().unwrap();
    let db = support::database("txn_retry");
    let client = deployment.client("txn_retry").await.build().unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .policy(ConflictPolicy::ClientWins)
        .subscribe(doc! {});
    let path = client.store().path().to_owned();
    for k in 0..DOCS {
        notes.insert(doc! { "_id": k, "n": 0 }).await.unwrap();
    }
    eventually("the inserts upload", || {
        client.status().borrow().pending == 0
    })
    .await;
    drop((client, notes));
    // Offline: updates on the versions this client knows; meanwhile document 0 changes on the
    // server (another writer, bumping `_sync.v`).
    let (offline_client, offline_notes) = offline(support::reopen(&path).await, &db).await;
    for _ in 0..ROUNDS {
        for k in 0..DOCS {
            offline_notes
                .update(k, Changes::new().inc("n", 1))
                .await
                .unwrap();
        }
    }
    drop((offline_client, offline_notes));
    deployment
        .raw()
        .await
        .database(&db)
        .collection::<Document>("notes")
        .update_one(
            doc! { "_id": 0 },
            doc! { "$set": { "m": 1 }, "$inc": { "_sync.v": 1 } },
        )
        .await
        .unwrap();
    server
        .fail_command(
            FailCommand::new(["update"])
                .error_code(112)
                .error_labels(["TransientTransactionError"])
                .times(2),
        )
        .unwrap();
    server
        .fail_command(
            FailCommand::new(["commitTransaction"])
                .error_code(91)
                .error_labels(["UnknownTransactionCommitResult"])
                .times(1),
        )
        .unwrap();
    let client = SyncClient::builder(
        support::keel(&deployment.uri).await,
        support::reopen(&path).await,
    )
    .build()
    .unwrap();
    let _notes = client
        .collection::<Document>(&db, "notes")
        .policy(ConflictPolicy::ClientWins)
        .subscribe(doc! {});
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    assert_eq!(client.uses_transactions(), Some(true));
    for k in 0..DOCS {
        let found = deployment.doc(&db, "notes", k).await.unwrap();
        assert_eq!(
            found.get_i32("n").unwrap(),
            ROUNDS,
            "each $inc once: {found}"
        );
    }
    let outside = deployment.doc(&db, "notes", 0).await.unwrap();
    assert_eq!(
        outside.get_i32("m").unwrap(),
        1,
        "ClientWins keeps the outside field"
    );
    let conflicts = client.store().conflicts().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
}
