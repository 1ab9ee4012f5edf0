//! A local write (or a `write_many` batch) whose commit fails (an injected store failure, as a full disk gives) returns
//! the error and is taken out of the local view and the queue again: it is never shown, never
//! uploaded, and not in the store after reopening.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_sync::{Changes, Store, SyncError, Write};
use mongodb::bson::{Document, doc};
use support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_rolls_the_write_back_out_of_the_view() {
    let path = support::store_path("rollback");
    {
        let (client, notes) = support::offline_client(Store::open(&path).unwrap()).await;
        notes.insert(doc! { "_id": 1, "n": 0 }).await.unwrap();

        client.store().fail_next_commits(1);
        let failed = notes.update(1, Changes::new().inc("n", 1)).await;
        assert!(matches!(failed, Err(SyncError::Storage(_))), "{failed:?}");
        assert_eq!(notes.get(1).unwrap(), Some(doc! { "_id": 1, "n": 0 }));
        assert_eq!(client.status().borrow().pending, 1);

        client.store().fail_next_commits(1);
        let failed = notes.insert(doc! { "_id": 2 }).await;
        assert!(matches!(failed, Err(SyncError::Storage(_))), "{failed:?}");
        assert_eq!(notes.get(2).unwrap(), None);
        // The `_id` is free again.
        notes.insert(doc! { "_id": 3 }).await.unwrap();
        notes.update(1, Changes::new().inc("n", 5)).await.unwrap();
        assert_eq!(notes.get(1).unwrap(), Some(doc! { "_id": 1, "n": 5 }));
        assert_eq!(client.status().borrow().pending, 3);
        let on_disk = client.store().pending().unwrap();
        assert_eq!(on_disk.len(), 3, "{on_disk:?}");
    }
    let (client, notes) = support::offline_client(support::reopen(&path).await).await;
    assert_eq!(notes.get(1).unwrap(), Some(doc! { "_id": 1, "n": 5 }));
    assert_eq!(notes.get(2).unwrap(), None);
    assert_eq!(client.status().borrow().pending, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_commit_failed_is_never_uploaded() {
    let server = support::server().await;
    let db = support::database("rollback_upload");
    let client = server.client("rollback_upload").await.build().unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .subscribe(doc! {});
    client.store().fail_next_commits(1);
    assert!(notes.insert(doc! { "_id": 7 }).await.is_err());
    notes.insert(doc! { "_id": 8 }).await.unwrap();
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    let mut ids = Vec::new();
    for id in [7, 8] {
        if server.doc(&db, "notes", id).await.is_some() {
            ids.push(id);
        }
    }
    assert_eq!(ids, vec![8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_durable_whole_or_not_at_all() {
    let (client, notes) =
        support::offline_client(Store::open(support::store_path("batch")).unwrap()).await;
    // Each write is checked with the ones before it applied.
    notes
        .write_many(vec![
            Write::Insert(doc! { "_id": 1, "n": 0 }),
            Write::Update(1.into(), Changes::new().inc("n", 2)),
            Write::Insert(doc! { "_id": 2 }),
            Write::Delete(2.into()),
        ])
        .await
        .unwrap();
    assert_eq!(notes.get(1).unwrap(), Some(doc! { "_id": 1, "n": 2 }));
    assert_eq!(notes.get(2).unwrap(), None);
    assert_eq!(client.store().pending().unwrap().len(), 4);
    // A refused write refuses the batch: nothing of it is applied or queued.
    let refused = notes
        .write_many(vec![
            Write::Update(1.into(), Changes::new().inc("n", 1)),
            Write::Update(9.into(), Changes::new().inc("n", 1)),
        ])
        .await;
    assert!(matches!(refused, Err(SyncError::NotFound)), "{refused:?}");
    assert_eq!(notes.get(1).unwrap(), Some(doc! { "_id": 1, "n": 2 }));
    // A failed commit rolls the whole batch back.
    client.store().fail_next_commits(1);
    let failed = notes
        .write_many(vec![
            Write::Update(1.into(), Changes::new().inc("n", 1)),
            Write::Insert(doc! { "_id": 3 }),
        ])
        .await;
    assert!(matches!(failed, Err(SyncError::Storage(_))), "{failed:?}");
    assert_eq!(notes.get(1).unwrap(), Some(doc! { "_id": 1, "n": 2 }));
    assert_eq!(notes.get(3).unwrap(), None);
    assert_eq!(client.status().borrow().pending, 4);
    assert_eq!(client.store().pending().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_made_on_top_of_a_write_whose_commit_failed_fails_too() {
    let (client, notes) =
        support::offline_client(Store::open(support::store_path("stacked")).unwrap()).await;
    notes.insert(doc! { "_id": 1, "n": 0 }).await.unwrap();

    // The insert's commit is taken alone and held; the update of the inserted document (which
    // the view shows) queues behind it, in the next commit; then the insert's commit fails.
    let store = client.store().clone();
    store.fail_next_commits(1);
    store.hold_next_commit();
    let insert = tokio::spawn({
        let notes = notes.clone();
        async move { notes.insert(doc! { "_id": 2, "n": 0 }).await }
    });
    eventually("the insert's commit is held", || store.commit_is_held()).await;
    assert!(notes.get(2).unwrap().is_some());
    let update = tokio::spawn({
        let notes = notes.clone();
        async move { notes.update(2, Changes::new().inc("n", 1)).await }
    });
    // An unrelated write queued behind it is not affected.
    let other = tokio::spawn({
        let notes = notes.clone();
        async move { notes.update(1, Changes::new().inc("n", 1)).await }
    });
    eventually("both writes are queued", || {
        client.status().borrow().pending == 4
    })
    .await;
    store.release_held_commit();

    let insert = insert.await.unwrap();
    assert!(matches!(insert, Err(SyncError::Storage(_))), "{insert:?}");
    let update = update.await.unwrap();
    assert!(
        matches!(update, Err(SyncError::BasedOnFailedWrite)),
        "{update:?}"
    );
    other.await.unwrap().unwrap();
    assert_eq!(notes.get(2).unwrap(), None);
    assert_eq!(notes.get(1).unwrap(), Some(doc! { "_id": 1, "n": 1 }));
    eventually(
        "only the first insert and the update of 1 stay queued",
        || client.status().borrow().pending == 2,
    )
    .await;
    let on_disk: Vec<_> = client
        .store()
        .pending()
        .unwrap()
        .into_iter()
        .map(|op| op.doc_id)
        .collect();
    assert_eq!(on_disk, vec![1.into(), 1.into()], "{on_disk:?}");
}
