//! Multi-document transactions through the official driver (`start_session`,
//! `start_transaction`, `.session(&mut s)`, `commit_transaction`, `abort_transaction`,
//! `and_run2`) and on the raw wire: isolation, atomic commit, conflicts, abort, the change
//! events a commit produces, retried commits, step-down/restart, and the standalone refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongodb::change_stream::event::OperationType;
use mongodb::error::TRANSIENT_TRANSACTION_ERROR;
use mongodb::{Client, ClientSession, Collection};
use support::raw::Raw;
use support::{code, fast_options, next_event, replica_set, within};

fn accounts(client: &Client) -> Collection<Document> {
    client.database("bank").collection("accounts")
}

/// A session whose open transaction has inserted `document` into `coll`.
async fn inserted_in_a_transaction(
    client: &Client,
    coll: &Collection<Document>,
    document: Document,
) -> ClientSession {
    let mut session = client.start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    coll.insert_one(document)
        .session(&mut session)
        .await
        .unwrap();
    session
}

fn labels(reply: &Document) -> Vec<String> {
    reply
        .get_array("errorLabels")
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A raw session: commands with `lsid`, `txnNumber` and `autocommit: false`, as drivers send
/// them inside a transaction.
struct RawTxn {
    lsid: Document,
    txn: i64,
}

impl RawTxn {
    fn new() -> Self {
        let id = mongodb::bson::Binary::from_uuid(mongodb::bson::Uuid::new());
        Self {
            lsid: doc! {"id": id},
            txn: 1,
        }
    }

    /// `body` as the transaction's first (`start`) or a later statement.
    fn statement(&self, mut body: Document, start: bool) -> Document {
        body.insert("lsid", self.lsid.clone());
        body.insert("txnNumber", self.txn);
        if start {
            body.insert("startTransaction", true);
        }
        body.insert("autocommit", false);
        body
    }

    fn commit(&self) -> Document {
        self.statement(doc! {"commitTransaction": 1, "$db": "admin"}, false)
    }
}

/// The first statement every raw test starts its transaction with: insert `{_id: 1}` into
/// `app.c`.
fn first_insert() -> Document {
    doc! {"insert": "c", "documents": [{"_id": 1}], "$db": "app"}
}

/// A raw connection to `member` with a transaction started by [`first_insert`].
async fn raw_transaction(member: std::net::SocketAddr) -> (Raw, RawTxn) {
    let mut raw = Raw::connect(member).await;
    let t = RawTxn::new();
    let reply = raw.command(t.statement(first_insert(), true)).await;
    assert_eq!(reply.get_i32("n"), Ok(1), "{reply}");
    (raw, t)
}

#[tokio::test]
async fn a_transaction_reads_its_own_writes_and_others_see_them_only_after_the_commit() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    coll.insert_one(doc! {"_id": "a", "balance": 100})
        .await
        .unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.update_one(doc! {"_id": "a"}, doc! {"$inc": {"balance": -30}})
        .session(&mut s)
        .await
        .unwrap();
    coll.insert_one(doc! {"_id": "b", "balance": 30})
        .session(&mut s)
        .await
        .unwrap();
    let inside = coll
        .find_one(doc! {"_id": "a"})
        .session(&mut s)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inside.get_i32("balance"), Ok(70), "reads its own write");
    let outside = coll.find_one(doc! {"_id": "a"}).await.unwrap().unwrap();
    assert_eq!(
        outside.get_i32("balance"),
        Ok(100),
        "uncommitted stays invisible"
    );
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 1);

    s.commit_transaction().await.unwrap();
    let after: Vec<Document> = coll
        .find(doc! {})
        .await
        .unwrap()
        .map(|d| d.unwrap())
        .collect()
        .await;
    assert_eq!(
        after,
        [
            doc! {"_id": "a", "balance": 70},
            doc! {"_id": "b", "balance": 30}
        ]
    );
}

#[tokio::test]
async fn a_transaction_reads_from_its_snapshot() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    coll.insert_one(doc! {"_id": "a", "v": 1}).await.unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    let first = coll.find_one(doc! {}).session(&mut s).await.unwrap();
    coll.update_one(doc! {"_id": "a"}, doc! {"$set": {"v": 2}})
        .await
        .unwrap();
    coll.insert_one(doc! {"_id": "z"}).await.unwrap();
    let again = coll
        .find_one(doc! {"_id": "a"})
        .session(&mut s)
        .await
        .unwrap();
    assert_eq!(first, again, "a later commit is not seen inside");
    assert_eq!(
        coll.count_documents(doc! {}).session(&mut s).await.unwrap(),
        1
    );
    s.commit_transaction().await.unwrap();
}

#[tokio::test]
async fn an_aborted_transaction_leaves_nothing_behind() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    let mut s = inserted_in_a_transaction(&client, &coll, doc! {"_id": "gone"}).await;
    s.abort_transaction().await.unwrap();
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 0);
    // The session goes on with a new transaction.
    s.start_transaction().await.unwrap();
    coll.insert_one(doc! {"_id": "kept"})
        .session(&mut s)
        .await
        .unwrap();
    s.commit_transaction().await.unwrap();
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 1);
}

#[tokio::test]
async fn writing_a_document_changed_since_the_snapshot_is_a_transient_write_conflict() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    coll.insert_one(doc! {"_id": "a", "v": 0}).await.unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.find_one(doc! {}).session(&mut s).await.unwrap();
    coll.update_one(doc! {"_id": "a"}, doc! {"$set": {"v": 1}})
        .await
        .unwrap();
    let e = coll
        .update_one(doc! {"_id": "a"}, doc! {"$set": {"v": 2}})
        .session(&mut s)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(112), "{e}");
    assert!(e.contains_label(TRANSIENT_TRANSACTION_ERROR), "{e}");
    let _ = s.abort_transaction().await;
    let doc = coll.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(doc.get_i32("v"), Ok(1));
}

#[tokio::test]
async fn the_second_transaction_to_write_a_document_conflicts() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    coll.insert_one(doc! {"_id": "a", "v": 0}).await.unwrap();
    let (mut first, mut second) = (
        client.start_session().await.unwrap(),
        client.start_session().await.unwrap(),
    );
    first.start_transaction().await.unwrap();
    second.start_transaction().await.unwrap();
    coll.update_one(doc! {"_id": "a"}, doc! {"$set": {"v": 1}})
        .session(&mut first)
        .await
        .unwrap();
    let e = coll
        .update_one(doc! {"_id": "a"}, doc! {"$set": {"v": 2}})
        .session(&mut second)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(112), "{e}");
    assert!(e.contains_label(TRANSIENT_TRANSACTION_ERROR));
    first.commit_transaction().await.unwrap();
    let doc = coll.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(doc.get_i32("v"), Ok(1));
}

#[tokio::test]
async fn a_write_outside_landing_on_a_written_document_fails_the_commit_transiently() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    coll.insert_one(doc! {"_id": "a", "v": 0}).await.unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.update_one(doc! {"_id": "a"}, doc! {"$set": {"v": 1}})
        .session(&mut s)
        .await
        .unwrap();
    coll.update_one(doc! {"_id": "a"}, doc! {"$set": {"v": 9}})
        .await
        .unwrap();
    let e = s.commit_transaction().await.unwrap_err();
    assert_eq!(code(&e), Some(112), "{e}");
    assert!(e.contains_label(TRANSIENT_TRANSACTION_ERROR));
    let doc = coll.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(
        doc.get_i32("v"),
        Ok(9),
        "nothing of the transaction applied"
    );
}

#[tokio::test]
async fn the_drivers_retry_loop_runs_the_transaction_again_after_a_conflict() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    coll.insert_one(doc! {"_id": "a", "balance": 100})
        .await
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut s = client.start_session().await.unwrap();
    let (c, n) = (coll.clone(), Arc::clone(&attempts));
    within(s.start_transaction().and_run2(async move |session| {
        c.find_one(doc! {"_id": "a"}).session(&mut *session).await?;
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            // Someone else changes the document after this attempt's snapshot.
            c.update_one(doc! {"_id": "a"}, doc! {"$inc": {"balance": 1}})
                .await?;
        }
        c.update_one(doc! {"_id": "a"}, doc! {"$inc": {"balance": -10}})
            .session(&mut *session)
            .await?;
        Ok(())
    }))
    .await
    .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let doc = coll.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(doc.get_i32("balance"), Ok(91));
}

#[tokio::test]
async fn a_change_stream_sees_the_committed_operations_with_lsid_and_txn_number() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    let mut stream = coll.watch().await.unwrap();
    let mut s = inserted_in_a_transaction(&client, &coll, doc! {"_id": 1}).await;
    coll.update_one(doc! {"_id": 1}, doc! {"$set": {"x": 1}})
        .session(&mut s)
        .await
        .unwrap();
    coll.delete_one(doc! {"_id": 1})
        .session(&mut s)
        .await
        .unwrap();
    // An untransacted write after the transaction's statements but before its commit.
    coll.insert_one(doc! {"_id": 2}).await.unwrap();
    s.commit_transaction().await.unwrap();
    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(next_event(&mut stream).await);
    }
    let kinds: Vec<OperationType> = events.iter().map(|e| e.operation_type.clone()).collect();
    assert_eq!(
        kinds,
        [
            OperationType::Insert,
            OperationType::Insert,
            OperationType::Update,
            OperationType::Delete
        ],
        "the commit's operations come after the earlier write, in their order"
    );
    assert_eq!(events[0].txn_number, None);
    assert!(events[0].lsid.is_none());
    let session_id = s.id().get("id").cloned().unwrap();
    for e in &events[1..] {
        assert_eq!(e.txn_number, Some(1));
        assert_eq!(e.lsid.as_ref().and_then(|l| l.get("id")), Some(&session_id));
    }
    // As on mongod, a transaction's events share the commit's cluster time and are told apart
    // by their tokens.
    let commit_time = events[1].cluster_time.unwrap();
    assert!(
        events[1..]
            .iter()
            .all(|e| e.cluster_time == Some(commit_time))
    );
    assert!(events[0].cluster_time.unwrap() < commit_time);
    let tokens: std::collections::HashSet<String> =
        events.iter().map(|e| format!("{:?}", e.id)).collect();
    assert_eq!(tokens.len(), 4, "every event has its own resume token");
    // local.oplog.rs lists the commit as one applyOps entry with the transaction's identity.
    let oplog = client.database("local").collection::<Document>("oplog.rs");
    let tagged: Vec<Document> = oplog
        .find(doc! {"txnNumber": 1_i64})
        .await
        .unwrap()
        .map(|d| d.unwrap())
        .collect()
        .await;
    assert_eq!(tagged.len(), 1, "{tagged:?}");
    let commit = &tagged[0];
    assert_eq!(commit.get_str("op"), Ok("c"));
    assert_eq!(commit.get_str("ns"), Ok("admin.$cmd"));
    assert_eq!(commit.get_timestamp("ts"), Ok(commit_time));
    assert_eq!(
        commit.get_document("lsid").unwrap().get("id"),
        Some(&session_id)
    );
    let ops: Vec<&str> = commit
        .get_document("o")
        .unwrap()
        .get_array("applyOps")
        .unwrap()
        .iter()
        .map(|op| op.as_document().unwrap().get_str("op").unwrap())
        .collect();
    assert_eq!(ops, ["i", "u", "d"]);
}

#[tokio::test]
async fn commit_is_retryable_and_a_finished_transaction_refuses_more_statements() {
    let (server, _client) = replica_set(1).await;
    let (mut raw, t) = raw_transaction(server.members()[0]).await;
    for _ in 0..2 {
        let reply = raw.command(t.commit()).await;
        assert_eq!(reply.get_f64("ok"), Ok(1.0), "{reply}");
    }
    let more = raw
        .command(t.statement(doc! {"find": "c", "$db": "app"}, false))
        .await;
    assert_eq!(more.get_i32("code"), Ok(256), "{more}");
    let abort = raw
        .command(t.statement(doc! {"abortTransaction": 1, "$db": "admin"}, false))
        .await;
    assert_eq!(abort.get_i32("code"), Ok(256), "{abort}");

    // An unknown transaction number, and one already aborted.
    let unknown = RawTxn {
        txn: 7,
        ..RawTxn::new()
    };
    let reply = raw.command(unknown.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(251), "{reply}");
    assert_eq!(labels(&reply), [TRANSIENT_TRANSACTION_ERROR]);
    let aborted = RawTxn::new();
    raw.command(aborted.statement(doc! {"find": "c", "$db": "app"}, true))
        .await;
    raw.command(aborted.statement(doc! {"abortTransaction": 1, "$db": "admin"}, false))
        .await;
    let reply = raw
        .command(aborted.statement(doc! {"find": "c", "$db": "app"}, false))
        .await;
    assert_eq!(reply.get_i32("code"), Ok(251), "{reply}");
    assert_eq!(labels(&reply), [TRANSIENT_TRANSACTION_ERROR]);
}

#[tokio::test]
async fn commands_a_transaction_cannot_run_are_refused_and_abort_it() {
    let (server, client) = replica_set(1).await;
    let (mut raw, t) = raw_transaction(server.members()[0]).await;
    let reply = raw
        .command(t.statement(doc! {"count": "c", "$db": "app"}, false))
        .await;
    assert_eq!(reply.get_i32("code"), Ok(263), "{reply}");
    let reply = raw.command(t.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(251), "{reply}");
    let coll = client.database("app").collection::<Document>("c");
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 0);
}

#[tokio::test]
async fn a_step_down_aborts_the_open_transaction() {
    let (server, client) = replica_set(2).await;
    let coll = accounts(&client);
    let mut s = inserted_in_a_transaction(&client, &coll, doc! {"_id": "lost"}).await;
    server.step_down().unwrap();
    let e = within(s.commit_transaction()).await.unwrap_err();
    assert!(e.contains_label(TRANSIENT_TRANSACTION_ERROR), "{e}");
    assert_eq!(code(&e), Some(251), "{e}");
    assert_eq!(
        within(coll.count_documents(doc! {})).await.unwrap(),
        0,
        "nothing committed"
    );

    // Even back on the same member, the transaction is gone.
    let (mut raw, t) = raw_transaction(server.members()[1]).await;
    server.elect(0).unwrap();
    server.elect(1).unwrap();
    let reply = raw.command(t.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(251), "{reply}");
}

#[tokio::test]
async fn a_restart_loses_uncommitted_transactions() {
    let (server, _client) = replica_set(1).await;
    let (_raw, t) = raw_transaction(server.members()[0]).await;
    server.restart().await.unwrap();
    let mut raw = Raw::connect(server.members()[0]).await;
    let reply = raw.command(t.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(251), "{reply}");
    let count = raw.command(doc! {"count": "c", "$db": "app"}).await;
    assert_eq!(count.get_i32("n"), Ok(0));
}

#[tokio::test]
async fn a_secondary_refuses_to_commit_with_a_retryable_label() {
    let (server, _client) = replica_set(2).await;
    let mut raw = Raw::connect(server.members()[1]).await;
    let t = RawTxn::new();
    let reply = raw.command(t.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(10107), "{reply}");
    assert_eq!(labels(&reply), ["RetryableWriteError"]);
}

#[tokio::test]
async fn a_standalone_refuses_transaction_numbers_as_mongod() {
    let server = TestServer::start().await.unwrap();
    let mut raw = Raw::connect(server.addr()).await;
    let reply = raw
        .command(RawTxn::new().statement(first_insert(), true))
        .await;
    assert_eq!(reply.get_i32("code"), Ok(20), "{reply}");
    assert_eq!(
        reply.get_str("errmsg"),
        Ok("Transaction numbers are only allowed on a replica set member or mongos")
    );
    // The driver knows a standalone from its hello and refuses by itself.
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let coll = client.database("app").collection::<Document>("c");
    let mut s = client.start_session().await.unwrap();
    // Before it has seen the server's hello the driver lets the transaction start, and the
    // server refuses the first statement; afterwards the driver refuses by itself.
    let refused = match s.start_transaction().await {
        Err(e) => e,
        Ok(()) => coll
            .insert_one(doc! {"_id": 2})
            .session(&mut s)
            .await
            .unwrap_err(),
    };
    assert!(
        code(&refused) == Some(20)
            || refused
                .to_string()
                .contains("Transactions are not supported by this deployment"),
        "{refused}"
    );
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 0);
}

#[tokio::test]
async fn retryable_writes_still_work_on_a_session_that_ran_a_transaction() {
    let (server, client) = replica_set(1).await;
    let coll = accounts(&client);
    let mut s = inserted_in_a_transaction(&client, &coll, doc! {"_id": 1}).await;
    s.commit_transaction().await.unwrap();
    // A retryable write on the same session: its retry after a dropped reply runs once.
    server
        .fail_command(
            keel_testkit::FailCommand::new(["insert"])
                .close_connection()
                .times(1),
        )
        .unwrap();
    coll.insert_one(doc! {"_id": 2})
        .session(&mut s)
        .await
        .unwrap();
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 2);
}

#[tokio::test]
async fn run_command_cursors_and_every_crud_call_work_inside_a_transaction() {
    let (_server, client) = replica_set(1).await;
    let db = client.database("bank");
    let coll = accounts(&client);
    coll.insert_many((0..5).map(|i| doc! {"_id": i, "v": 0}))
        .await
        .unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    // What keel-sync's batch upload sends: one ordered `update` through run_command.
    let reply = db
        .run_command(doc! {
            "update": "accounts",
            "updates": [
                {"q": {"_id": 0, "v": 0}, "u": {"$set": {"v": 1}}},
                {"q": {"_id": 1, "v": 0}, "u": {"_id": 1, "v": 1}},
            ],
            "ordered": true,
        })
        .session(&mut s)
        .await
        .unwrap();
    assert_eq!(reply.get_i32("nModified"), Ok(2), "{reply}");
    coll.insert_many([doc! {"_id": 10}, doc! {"_id": 11}])
        .session(&mut s)
        .await
        .unwrap();
    coll.replace_one(doc! {"_id": 2}, doc! {"v": 2})
        .session(&mut s)
        .await
        .unwrap();
    coll.update_many(doc! {"_id": {"$gte": 3, "$lt": 5}}, doc! {"$inc": {"v": 3}})
        .session(&mut s)
        .await
        .unwrap();
    coll.delete_one(doc! {"_id": 11})
        .session(&mut s)
        .await
        .unwrap();
    let found = coll
        .find_one_and_update(doc! {"_id": 10}, doc! {"$set": {"v": 10}})
        .session(&mut s)
        .await
        .unwrap();
    assert_eq!(found, Some(doc! {"_id": 10}));
    // A cursor over several batches: its getMores run in the transaction too.
    let mut cursor = coll
        .find(doc! {})
        .batch_size(2)
        .session(&mut s)
        .await
        .unwrap();
    let mut inside = Vec::new();
    while let Some(d) = cursor.next(&mut s).await {
        inside.push(d.unwrap());
    }
    drop(cursor);
    let expected = vec![
        doc! {"_id": 0, "v": 1},
        doc! {"_id": 1, "v": 1},
        doc! {"_id": 2, "v": 2},
        doc! {"_id": 3, "v": 3},
        doc! {"_id": 4, "v": 3},
        doc! {"_id": 10, "v": 10},
    ];
    assert_eq!(inside, expected);
    assert_eq!(
        coll.count_documents(doc! {"v": 0}).await.unwrap(),
        5,
        "outside, nothing changed yet"
    );
    s.commit_transaction().await.unwrap();
    let after: Vec<Document> = coll
        .find(doc! {})
        .await
        .unwrap()
        .map(|d| d.unwrap())
        .collect()
        .await;
    assert_eq!(after, expected);
}

/// A raw transaction that wrote document `_id: "a"` of `bank.accounts` and stays open.
async fn abandoned_writer(server: &TestServer) -> (Raw, RawTxn) {
    let mut raw = Raw::connect(server.members()[0]).await;
    let t = RawTxn::new();
    let reply = raw
        .command(t.statement(
            doc! {"update": "accounts", "updates": [{"q": {"_id": "a"}, "u": {"$set": {"by": "zombie"}}}],
                  "$db": "bank"},
            true,
        ))
        .await;
    assert_eq!(reply.get_i32("nModified"), Ok(1), "{reply}");
    (raw, t)
}

#[tokio::test]
async fn an_abandoned_transaction_is_aborted_after_the_lifetime_limit() {
    let server = TestServer::builder()
        .replica_set("rs0", 1)
        .transaction_lifetime_limit(std::time::Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let coll = accounts(&client);
    coll.insert_one(doc! {"_id": "a"}).await.unwrap();
    let (mut raw, zombie) = abandoned_writer(&server).await;
    // Conflicts until the server gives up on the abandoned transaction; the driver's loop
    // retries on TransientTransactionError until then.
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut s = client.start_session().await.unwrap();
    let (c, n) = (coll.clone(), Arc::clone(&attempts));
    within(s.start_transaction().and_run2(async move |session| {
        n.fetch_add(1, Ordering::SeqCst);
        c.update_one(doc! {"_id": "a"}, doc! {"$set": {"by": "live"}})
            .session(&mut *session)
            .await?;
        Ok(())
    }))
    .await
    .unwrap();
    assert!(
        attempts.load(Ordering::SeqCst) > 1,
        "the first attempt conflicted"
    );
    let reply = raw.command(zombie.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(251), "{reply}");
    let doc = coll.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(doc.get_str("by"), Ok("live"));
}

#[tokio::test]
async fn end_sessions_aborts_their_open_transactions() {
    let (server, client) = replica_set(1).await;
    let coll = accounts(&client);
    coll.insert_one(doc! {"_id": "a"}).await.unwrap();
    let (mut raw, zombie) = abandoned_writer(&server).await;
    let ended = raw
        .command(doc! {"endSessions": [zombie.lsid.clone()], "$db": "admin"})
        .await;
    assert_eq!(ended.get_f64("ok"), Ok(1.0));
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.update_one(doc! {"_id": "a"}, doc! {"$set": {"by": "live"}})
        .session(&mut s)
        .await
        .unwrap();
    s.commit_transaction().await.unwrap();
    let reply = raw.command(zombie.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(251), "{reply}");
}

/// A transaction on `_id: "a"` through the driver: it commits, with no `WriteConflict` (an
/// open transaction on the document would make it conflict).
async fn commit_live_update(client: &Client) {
    let coll = accounts(client);
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.update_one(doc! {"_id": "a"}, doc! {"$set": {"by": "live"}})
        .session(&mut s)
        .await
        .unwrap();
    s.commit_transaction().await.unwrap();
}

#[tokio::test]
async fn kill_sessions_aborts_their_open_transactions_and_the_session_stays_usable() {
    let (server, client) = replica_set(1).await;
    accounts(&client)
        .insert_one(doc! {"_id": "a"})
        .await
        .unwrap();
    let (mut raw, mut zombie) = abandoned_writer(&server).await;
    // What a restarted client sends for the session its killed process left in a transaction.
    let killed = client
        .database("admin")
        .run_command(doc! {"killSessions": [{"id": zombie.lsid.get("id").unwrap().clone()}]})
        .await
        .unwrap();
    assert_eq!(killed.get_f64("ok"), Ok(1.0));
    commit_live_update(&client).await;
    let reply = raw.command(zombie.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(251), "aborted: {reply}");
    // A killed session can still run a later transaction.
    zombie.txn += 1;
    let reply = raw
        .command(zombie.statement(doc! {"find": "accounts", "$db": "bank"}, true))
        .await;
    assert_eq!(reply.get_f64("ok"), Ok(1.0), "{reply}");
}

#[tokio::test]
async fn kill_all_sessions_aborts_every_open_transaction() {
    let (server, client) = replica_set(1).await;
    accounts(&client)
        .insert_one(doc! {"_id": "a"})
        .await
        .unwrap();
    let (mut raw, zombie) = abandoned_writer(&server).await;
    let killed = client
        .database("admin")
        .run_command(doc! {"killAllSessions": []})
        .await
        .unwrap();
    assert_eq!(killed.get_f64("ok"), Ok(1.0));
    commit_live_update(&client).await;
    let reply = raw.command(zombie.commit()).await;
    assert_eq!(reply.get_i32("code"), Ok(251), "aborted: {reply}");
}

#[tokio::test]
async fn a_majority_commit_returns_once_a_lagging_secondary_has_the_whole_transaction() {
    use mongodb::options::{ReadPreference, SelectionCriteria, WriteConcern};
    let server = TestServer::builder()
        .replica_set("rs0", 3)
        .replication_lag(1, std::time::Duration::from_millis(300))
        .replication_lag(2, std::time::Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let coll = accounts(&client);
    let mut s = client.start_session().await.unwrap();
    s.start_transaction()
        .write_concern(WriteConcern::majority())
        .await
        .unwrap();
    coll.insert_many([doc! {"_id": 1}, doc! {"_id": 2}])
        .session(&mut s)
        .await
        .unwrap();
    within(s.commit_transaction()).await.unwrap();
    // Member 1 (the only other member within the majority's reach) has both documents.
    let direct = format!("mongodb://{}/?directConnection=true", server.members()[1]);
    let member1 = Client::with_options(fast_options(&direct).await).unwrap();
    let on_member1 = accounts(&member1)
        .count_documents(doc! {})
        .selection_criteria(SelectionCriteria::ReadPreference(
            ReadPreference::SecondaryPreferred {
                options: Default::default(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(on_member1, 2);
}

#[tokio::test]
async fn a_stream_resumes_between_the_events_of_one_transaction() {
    let (_server, client) = replica_set(1).await;
    let coll = accounts(&client);
    let mut stream = coll.watch().await.unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    for i in 0..3 {
        coll.insert_one(doc! {"_id": i})
            .session(&mut s)
            .await
            .unwrap();
    }
    s.commit_transaction().await.unwrap();
    let first = next_event(&mut stream).await;
    let commit_time = first.cluster_time.unwrap();
    let ids = |events: &[mongodb::change_stream::event::ChangeStreamEvent<Document>]| {
        events
            .iter()
            .map(|e| e.document_key.as_ref().unwrap().get_i32("_id").unwrap())
            .collect::<Vec<_>>()
    };
    // After the first event's token: the other two, not the first again.
    let mut resumed = coll.watch().resume_after(first.id.clone()).await.unwrap();
    let rest = vec![
        next_event(&mut resumed).await,
        next_event(&mut resumed).await,
    ];
    assert_eq!(ids(&rest), [1, 2]);
    // From the commit's cluster time (inclusive): all three.
    let mut at = coll
        .watch()
        .start_at_operation_time(commit_time)
        .await
        .unwrap();
    let all = vec![
        next_event(&mut at).await,
        next_event(&mut at).await,
        next_event(&mut at).await,
    ];
    assert_eq!(ids(&all), [0, 1, 2]);
}
