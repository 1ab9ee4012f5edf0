//! Rebase: a server change arriving while local operations are still queued becomes the new
//! base, the queued operations are re-applied on it in their order, and the local view seen
//! through `watch()` never shows a state without them (it never goes backwards).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};
use keel_sync::{Changes, ConflictPolicy, DownloadMode, LocalChange};
use keel_testkit::FailCommand;
use mongodb::bson::{Document, doc};
use support::{eventually, eventually_equals};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_operations_are_reapplied_in_order_on_a_server_change() {
    if support::skips_on_real_server("sets a fail point (it needs enableTestCommands)") {
        return;
    }
    let deployment = support::replica_set().await;
    let server = deployment.testkit.as_ref().unwrap();
    let db = support::database("rebase");
    let client = deployment
        .client("rebase")
        .await
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let notes = client
        .collection::<Document>(&db, "notes")
        .policy(ConflictPolicy::ClientWins)
        .subscribe(doc! {});
    notes.insert(doc! { "_id": 1, "n": 0 }).await.unwrap();
    eventually("the insert uploads and the download streams", || {
        client.status().borrow().pending == 0
            && client.downloads().first().map(|d| d.mode) == Some(DownloadMode::ChangeStream)
    })
    .await;

    // The upload's `update`s fail (not for good: the queue waits and backs off) while the
    // change stream still brings server changes.
    server
        .fail_command(FailCommand::new(["update"]).error_code(50).times(1_000_000))
        .unwrap();
    let mut changes = Box::pin(notes.watch());
    // Order matters in each pair: `$set` then `$inc` is 2 (the reverse 1), "x" then "y" is "y".
    for changes in [
        Changes::new().set("n", 1),
        Changes::new().inc("n", 1),
        Changes::new().set("a", "x"),
        Changes::new().set("a", "y"),
    ] {
        notes.update(1, changes).await.unwrap();
    }
    let local = doc! { "_id": 1, "n": 2, "a": "y" };
    assert_eq!(notes.get(1).unwrap().unwrap(), local);
    assert_eq!(client.status().borrow().pending, 4);

    // Another application changes the document (through `findAndModify`, which the fail point
    // leaves alone), bumping `_sync.v` as the README asks of writers outside keel-sync.
    let raw = deployment.raw().await;
    raw.database(&db)
        .collection::<Document>("notes")
        .find_one_and_update(
            doc! { "_id": 1 },
            doc! { "$set": { "m": 5, "n": 40 }, "$inc": { "_sync.v": 1 } },
        )
        .await
        .unwrap()
        .unwrap();
    let rebased = doc! { "_id": 1, "n": 2, "a": "y", "m": 5 };
    let rebased_view = Some(rebased.clone());
    eventually_equals(
        "the server change reaches the view under the queued operations",
        &rebased_view,
        || notes.get(1).unwrap(),
    )
    .await;
    assert_eq!(client.status().borrow().pending, 4, "nothing uploaded yet");

    // Every state the view showed: the four writes, then only states with all of them on top.
    let mut seen: Vec<LocalChange<Document>> = Vec::new();
    while let Some(Some(change)) = changes.next().now_or_never() {
        seen.push(change);
    }
    assert!(seen.len() >= 5, "{seen:?}");
    for change in &seen[4..] {
        let doc = change.doc.as_ref().unwrap();
        assert_eq!(
            (doc.get_i32("n").ok(), doc.get_str("a").ok()),
            (Some(2), Some("y")),
            "the view went back to a state without the queued operations: {seen:?}"
        );
    }
    assert_eq!(seen.last().unwrap().doc.as_ref(), Some(&rebased));

    // Once the upload gets through, the server holds the same state (ClientWins: the client's
    // operations on the server's document).
    server.clear_fail_points();
    eventually("the queue drains", || client.status().borrow().pending == 0).await;
    let mut on_server = deployment.doc(&db, "notes", 1).await.unwrap();
    on_server.remove("_sync");
    assert_eq!(on_server, rebased);
    assert!(
        client.quarantined().is_empty(),
        "{:?}",
        client.quarantined()
    );
    eventually_equals("the view equals the server", &rebased_view, || {
        notes.get(1).unwrap()
    })
    .await;
}
