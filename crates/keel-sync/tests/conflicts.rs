//! Conflicts between two clients of one keel-testkit server: each policy, the delete/update
//! rule, and the conflict log and stream.
//!
//! Client B reaches the server through a fault proxy that the tests close while A writes, so B
//! cannot download A's write before making its own: every test's conflict happens in every run
//! (B's own sync rounds, whenever they run, see nothing newer than the version B's write is
//! based on).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_sync::{
    Changes, ConflictPolicy, DeleteRule, Outcome, Resolution, Store, SyncClient, SyncedCollection,
    TieRule,
};
use keel_testkit::{FailCommand, FaultProxy, TestServer};
use mongodb::bson::{Document, doc};
use support::eventually;

struct Pair {
    server: TestServer,
    /// B's way to the server.
    b_proxy: FaultProxy,
    db: String,
    a: SyncClient,
    a_notes: SyncedCollection<Document>,
    b: SyncClient,
    b_notes: SyncedCollection<Document>,
}

/// Client A writes the document; client B downloads version 1 of it, so B's next write is based
/// on an old version once A wrote again while B was offline ([`Pair::b_offline`]).
/// `None` against `KEEL_TEST_URI` (after saying why): B's fault proxy needs keel-testkit.
async fn pair(test: &str, policy: ConflictPolicy, rule: DeleteRule) -> Option<Pair> {
    let server = support::testkit("cuts client B off at a fault proxy").await?;
    let b_proxy = FaultProxy::start(server.addr()).await.unwrap();
    let db = support::database(test);
    let a = SyncClient::builder(
        support::keel(&server.uri()).await,
        Store::open(support::store_path(&format!("{test}_a"))).unwrap(),
    )
    .build()
    .unwrap();
    let b = SyncClient::builder(
        support::keel(&b_proxy.uri()).await,
        Store::open(support::store_path(&format!("{test}_b"))).unwrap(),
    )
    .poll_interval(Duration::from_secs(3600))
    .build()
    .unwrap();
    let a_notes = a.collection::<Document>(&db, "notes").subscribe(doc! {});
    a_notes
        .insert(doc! { "_id": 1, "a": 1, "b": 1 })
        .await
        .unwrap();
    eventually("A uploads", || a.status().borrow().pending == 0).await;
    let b_notes = b
        .collection::<Document>(&db, "notes")
        .policy(policy)
        .delete_rule(rule)
        .subscribe(doc! {});
    eventually("B downloads", || b_notes.get(1).unwrap().is_some()).await;
    Some(Pair {
        server,
        b_proxy,
        db,
        a,
        a_notes,
        b,
        b_notes,
    })
}

impl Pair {
    /// Cuts B off the server (open connections reset, new ones refused) and waits until B
    /// reports itself offline: from here on no request of B's reaches the server, so nothing
    /// A writes can reach B before [`Pair::b_syncs`].
    async fn b_offline(&self) {
        support::cut_off(&self.b_proxy, &self.b).await;
    }

    async fn a_writes(&self, changes: Changes) {
        self.a_notes.update(1, changes).await.unwrap();
        eventually("A uploads", || self.a.status().borrow().pending == 0).await;
    }

    /// Lets B reach the server again and waits until its queue is empty.
    async fn b_syncs(&self) {
        self.b_proxy.clear().await.unwrap();
        eventually("B uploads", || self.b.status().borrow().pending == 0).await;
    }

    async fn server_doc(&self) -> Document {
        let raw = mongodb::Client::with_uri_str(self.server.uri())
            .await
            .unwrap();
        let mut found = raw
            .database(&self.db)
            .collection::<Document>("notes")
            .find_one(doc! { "_id": 1 })
            .await
            .unwrap()
            .unwrap();
        found.remove("_sync");
        found
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_wins_keeps_the_server_document_and_logs_the_conflict() {
    let Some(p) = pair(
        "server_wins",
        ConflictPolicy::ServerWins,
        DeleteRule::default(),
    )
    .await
    else {
        return;
    };
    let mut conflicts = p.b.conflicts();
    p.b_offline().await;
    p.a_writes(Changes::new().set("a", 2)).await;
    p.b_notes
        .update(1, Changes::new().set("a", 3))
        .await
        .unwrap();
    // Offline, B sees its own write at once.
    assert_eq!(p.b_notes.get(1).unwrap().unwrap().get_i32("a").unwrap(), 3);
    assert_eq!(p.b.status().borrow().pending, 1);
    p.b_syncs().await;
    assert_eq!(p.server_doc().await, doc! { "_id": 1, "a": 2, "b": 1 });
    let conflict = tokio::time::timeout(support::PATIENCE, conflicts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conflict.outcome, Outcome::KeptRemote);
    assert_eq!(conflict.decided_by, "server_wins");
    assert_eq!(p.b.store().conflicts().unwrap().len(), 1);
    assert_eq!(p.b.status().borrow().conflicts, 1);
    // B's view is the server's state again (its operation was dropped).
    eventually("B's view rebases", || {
        p.b_notes.get(1).unwrap().unwrap().get_i32("a").unwrap() == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_wins_overwrites_only_the_fields_the_client_changed() {
    let Some(p) = pair(
        "client_wins",
        ConflictPolicy::ClientWins,
        DeleteRule::default(),
    )
    .await
    else {
        return;
    };
    p.b_offline().await;
    p.a_writes(Changes::new().set("a", 2).set("b", 2)).await;
    p.b_notes
        .update(1, Changes::new().set("a", 3))
        .await
        .unwrap();
    p.b_syncs().await;
    assert_eq!(p.server_doc().await, doc! { "_id": 1, "a": 3, "b": 2 });
    let log = p.b.store().conflicts().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].outcome, log[0].decided_by.as_str()),
        (Outcome::KeptLocal, "client_wins")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_writer_wins_by_the_hybrid_logical_clock() {
    let Some(p) = pair("lww", ConflictPolicy::LastWriterWins, DeleteRule::default()).await else {
        return;
    };
    p.b_offline().await;
    p.a_writes(Changes::new().set("a", 2)).await;
    // B writes after A (B's clock is later): B wins.
    p.b_notes
        .update(1, Changes::new().set("a", 3))
        .await
        .unwrap();
    p.b_syncs().await;
    assert_eq!(p.server_doc().await.get_i32("a").unwrap(), 3);
    let log = p.b.store().conflicts().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome, Outcome::KeptLocal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_merge_keeps_both_sides_changes() {
    let Some(p) = pair(
        "merge",
        ConflictPolicy::FieldMerge(TieRule::Server),
        DeleteRule::default(),
    )
    .await
    else {
        return;
    };
    p.b_offline().await;
    p.a_writes(Changes::new().set("a", 2)).await;
    p.b_notes
        .update(1, Changes::new().set("b", 5))
        .await
        .unwrap();
    p.b_syncs().await;
    assert_eq!(p.server_doc().await, doc! { "_id": 1, "a": 2, "b": 5 });
    assert_eq!(p.b.store().conflicts().unwrap()[0].outcome, Outcome::Merged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_closure_decides_from_base_local_and_remote() {
    let policy = ConflictPolicy::custom(|input| {
        let remote = input.remote.unwrap().get_i32("a").unwrap();
        let local = input.local.unwrap().get_i32("a").unwrap();
        let base = input.base.unwrap().get_i32("a").unwrap();
        Resolution::Use(doc! { "a": remote + local - base, "b": 1 })
    });
    let Some(p) = pair("custom", policy, DeleteRule::default()).await else {
        return;
    };
    p.b_offline().await;
    p.a_writes(Changes::new().set("a", 11)).await; // +10
    p.b_notes
        .update(1, Changes::new().set("a", 6))
        .await
        .unwrap(); // +5
    p.b_syncs().await;
    assert_eq!(p.server_doc().await, doc! { "a": 16, "b": 1, "_id": 1 });
    assert_eq!(p.b.store().conflicts().unwrap()[0].decided_by, "custom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_wins_over_a_concurrent_update_by_default() {
    let Some(p) = pair(
        "delete_wins",
        ConflictPolicy::ClientWins,
        DeleteRule::DeleteWins,
    )
    .await
    else {
        return;
    };
    p.b_offline().await;
    p.a_notes.delete(1).await.unwrap();
    eventually("A uploads", || p.a.status().borrow().pending == 0).await;
    p.b_notes
        .update(1, Changes::new().set("a", 9))
        .await
        .unwrap();
    p.b_syncs().await;
    let raw = mongodb::Client::with_uri_str(p.server.uri()).await.unwrap();
    let tomb = raw
        .database(&p.db)
        .collection::<Document>("notes")
        .find_one(doc! { "_id": 1 })
        .await
        .unwrap()
        .unwrap();
    assert!(
        tomb.get_document("_sync")
            .unwrap()
            .get_bool("deleted")
            .unwrap()
    );
    assert_eq!(tomb.get_i32("a").unwrap(), 1, "the update was dropped");
    eventually("B's view drops the document", || {
        p.b_notes.get(1).unwrap().is_none()
    })
    .await;
    assert_eq!(
        p.b.store().conflicts().unwrap()[0].decided_by,
        "delete_wins"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_update_wins_an_update_resurrects_a_deleted_document() {
    let Some(p) = pair(
        "update_wins",
        ConflictPolicy::ClientWins,
        DeleteRule::UpdateWins,
    )
    .await
    else {
        return;
    };
    p.b_offline().await;
    p.a_notes.delete(1).await.unwrap();
    eventually("A uploads", || p.a.status().borrow().pending == 0).await;
    p.b_notes
        .update(1, Changes::new().set("a", 9))
        .await
        .unwrap();
    p.b_syncs().await;
    assert_eq!(p.server_doc().await, doc! { "_id": 1, "a": 9, "b": 1 });
    assert_eq!(
        p.b.store().conflicts().unwrap()[0].decided_by,
        "update_wins"
    );
    // A learns of the resurrection by download.
    eventually("A downloads it", || p.a_notes.get(1).unwrap().is_some()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_s_own_consecutive_writes_are_not_conflicts() {
    let Some(p) = pair(
        "own_writes",
        ConflictPolicy::ServerWins,
        DeleteRule::default(),
    )
    .await
    else {
        return;
    };
    for i in 0..5 {
        p.b_notes
            .update(1, Changes::new().inc("a", 1).set("i", i))
            .await
            .unwrap();
    }
    p.b_syncs().await;
    assert_eq!(
        p.server_doc().await,
        doc! { "_id": 1, "a": 6, "b": 1, "i": 4 }
    );
    assert!(p.b.store().conflicts().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_whose_write_reply_is_lost_is_still_logged_once() {
    let Some(p) = pair(
        "lost_reply",
        ConflictPolicy::ClientWins,
        DeleteRule::default(),
    )
    .await
    else {
        return;
    };
    let mut conflicts = p.b.conflicts();
    p.b_offline().await;
    p.a_writes(Changes::new().set("b", 2)).await;
    p.b_notes
        .update(1, Changes::new().set("a", 3))
        .await
        .unwrap();
    // B's conditional write of its decision applies, then its reply is an error (what a reply
    // lost on the way looks like): the retry matches nothing, the next read finds B's mark.
    p.server
        .fail_command(
            FailCommand::new(["update"])
                .write_concern_error(
                    doc! { "code": 64, "errmsg": "waiting for replication timed out" },
                )
                .times(1),
        )
        .unwrap();
    p.b_syncs().await;
    assert_eq!(p.server_doc().await, doc! { "_id": 1, "a": 3, "b": 2 });
    let log = p.b.store().conflicts().unwrap();
    assert_eq!(log.len(), 1, "the decision that landed is logged: {log:?}");
    assert_eq!(
        (log[0].outcome, log[0].decided_by.as_str()),
        (Outcome::KeptLocal, "client_wins")
    );
    let streamed = tokio::time::timeout(support::PATIENCE, conflicts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(streamed.outcome, Outcome::KeptLocal);
    assert_eq!(p.b.status().borrow().conflicts, 1);
}
