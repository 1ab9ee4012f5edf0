//! Resuming change streams through the official driver: `resumeAfter`, `startAfter`,
//! `startAtOperationTime`, a bounded oplog (`ChangeStreamHistoryLost`), the driver's own
//! resume after a forced `getMore` error and after a server restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use keel_testkit::{FailCommand, TestServer};
use mongodb::bson::{Bson, Document, doc};
use mongodb::change_stream::ChangeStream;
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::{Client, Collection};
use support::{code, fast_options, within};

type Stream = ChangeStream<ChangeStreamEvent<Document>>;

async fn next(s: &mut Stream) -> ChangeStreamEvent<Document> {
    support::next_event(s).await
}

async fn ids(s: &mut Stream, n: usize) -> Vec<Bson> {
    let mut out = Vec::new();
    for _ in 0..n {
        let e = next(s).await;
        out.push(e.document_key.unwrap().get("_id").unwrap().clone());
    }
    out
}

fn ints(v: &[i32]) -> Vec<Bson> {
    v.iter().map(|i| Bson::Int32(*i)).collect()
}

async fn insert(c: &Collection<Document>, ids: &[i32]) {
    for id in ids {
        c.insert_one(doc! {"_id": id}).await.unwrap();
    }
}

/// A client that records the `aggregate` commands it sends.
async fn recording(uri: &str) -> (Client, Arc<Mutex<Vec<Document>>>) {
    let mut options = fast_options(uri).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    options.command_event_handler = Some(EventHandler::callback(move |e: CommandEvent| {
        if let CommandEvent::Started(s) = e
            && s.command_name == "aggregate"
        {
            sink.lock().unwrap().push(s.command);
        }
    }));
    (Client::with_options(options).unwrap(), seen)
}

/// The `$changeStream` options of the last recorded `aggregate`.
fn last_stage(seen: &Mutex<Vec<Document>>) -> Document {
    let cmds = seen.lock().unwrap();
    let cmd = cmds.last().unwrap();
    cmd.get_array("pipeline").unwrap()[0]
        .as_document()
        .unwrap()
        .get_document("$changeStream")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn resume_after_start_after_and_start_at_operation_time() {
    let server = TestServer::replica_set("rs0", 1).await.unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let c = client.database("app").collection::<Document>("r");
    let mut stream = c.watch().await.unwrap();
    insert(&c, &[1, 2, 3]).await;
    let first = next(&mut stream).await;
    let token = first.id.clone();

    let mut resumed = c.watch().resume_after(token.clone()).await.unwrap();
    assert_eq!(ids(&mut resumed, 2).await, ints(&[2, 3]));
    let mut started = c.watch().start_after(token).await.unwrap();
    assert_eq!(ids(&mut started, 2).await, ints(&[2, 3]));
    let at = first.cluster_time.unwrap();
    let mut timed = c.watch().start_at_operation_time(at).await.unwrap();
    assert_eq!(ids(&mut timed, 3).await, ints(&[1, 2, 3]), "inclusive");

    // startAfter works across an invalidate; resumeAfter does not (InvalidResumeToken).
    c.drop().await.unwrap();
    insert(&c, &[10]).await;
    let _ = ids(&mut stream, 2).await;
    let drop = next(&mut stream).await;
    assert_eq!(drop.operation_type, OperationType::Drop);
    let invalidate = next(&mut stream).await;
    assert_eq!(invalidate.operation_type, OperationType::Invalidate);
    let mut after_drop = c.watch().start_after(invalidate.id.clone()).await.unwrap();
    assert_eq!(ids(&mut after_drop, 1).await, ints(&[10]));
    let err = c.watch().resume_after(invalidate.id).await.unwrap_err();
    assert_eq!(code(&err), Some(260));
}

#[tokio::test]
async fn a_token_older_than_the_oplog_window_is_history_lost() {
    let server = TestServer::builder()
        .replica_set("rs0", 1)
        .oplog_size(3)
        .start()
        .await
        .unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let c = client.database("app").collection::<Document>("h");
    let mut stream = c.watch().await.unwrap();
    insert(&c, &[1]).await;
    let token = next(&mut stream).await.id;
    // Still in the window: resumable.
    let mut ok = c.watch().resume_after(token.clone()).await.unwrap();
    insert(&c, &[2]).await;
    assert_eq!(ids(&mut ok, 1).await, ints(&[2]));

    insert(&c, &[3, 4, 5]).await; // entry 1 falls out of a 3-entry oplog
    let err = c.watch().resume_after(token).await.unwrap_err();
    assert_eq!(code(&err), Some(286));
    let ErrorKind(message) = message_of(&err);
    assert!(message.contains("no longer be in the oplog"), "{message}");

    // An open stream that fell behind fails on its next getMore instead of skipping.
    let mut idle = c.watch().await.unwrap();
    insert(&c, &[6, 7, 8, 9]).await;
    let err = within(idle.next()).await.unwrap().unwrap_err();
    assert_eq!(code(&err), Some(286));
    assert!(!err.contains_label("ResumableChangeStreamError"));
}

struct ErrorKind(String);

fn message_of(e: &mongodb::error::Error) -> ErrorKind {
    match &*e.kind {
        mongodb::error::ErrorKind::Command(c) => ErrorKind(c.message.clone()),
        other => ErrorKind(format!("{other:?}")),
    }
}

#[tokio::test]
async fn the_driver_resumes_after_a_forced_get_more_error() {
    let server = TestServer::replica_set("rs0", 1).await.unwrap();
    let (client, seen) = recording(&server.uri()).await;
    let c = client.database("app").collection::<Document>("f");
    let mut stream = c.watch().await.unwrap();
    insert(&c, &[1]).await;
    assert_eq!(ids(&mut stream, 1).await, ints(&[1]));
    assert_eq!(seen.lock().unwrap().len(), 1);

    // A resumable server error (labelled, as mongod labels getMore errors of change streams).
    server
        .fail_command(
            FailCommand::new(["getMore"])
                .error_code(6)
                .error_labels(["ResumableChangeStreamError"])
                .times(1),
        )
        .unwrap();
    insert(&c, &[2, 3]).await;
    assert_eq!(
        ids(&mut stream, 2).await,
        ints(&[2, 3]),
        "nothing lost or repeated"
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "the driver re-ran aggregate");
    assert!(last_stage(&seen).contains_key("resumeAfter"));

    // mongod's own way: failGetMoreAfterCursorCheckout, labelled by the server because the
    // cursor is a change stream — from Rust and through configureFailPoint.
    server
        .fail_command(FailCommand::get_more_after_cursor_checkout(10107).times(1))
        .unwrap();
    insert(&c, &[31]).await;
    assert_eq!(ids(&mut stream, 1).await, ints(&[31]));
    assert_eq!(seen.lock().unwrap().len(), 3);
    client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failGetMoreAfterCursorCheckout",
            "mode": {"times": 1},
            "data": {"errorCode": 6},
        })
        .await
        .unwrap();
    insert(&c, &[32]).await;
    assert_eq!(ids(&mut stream, 1).await, ints(&[32]));
    assert_eq!(seen.lock().unwrap().len(), 4);

    // A dropped connection resumes too.
    server
        .fail_command(FailCommand::new(["getMore"]).close_connection().times(1))
        .unwrap();
    insert(&c, &[4]).await;
    assert_eq!(ids(&mut stream, 1).await, ints(&[4]));
    assert_eq!(seen.lock().unwrap().len(), 5);

    // A plain failCommand fires before the cursor is known: as on mongod, no label, so even
    // a resumable code reaches the application.
    server
        .fail_command(FailCommand::new(["getMore"]).error_code(6).times(1))
        .unwrap();
    insert(&c, &[5]).await;
    let err = within(stream.next()).await.unwrap().unwrap_err();
    assert_eq!(code(&err), Some(6));
    assert!(!err.contains_label("ResumableChangeStreamError"));
}

#[tokio::test]
async fn the_driver_resumes_after_a_restart() {
    let server = TestServer::replica_set("rs0", 1).await.unwrap();
    let (client, seen) = recording(&server.uri()).await;
    let c = client.database("app").collection::<Document>("s");
    let mut stream = c.watch().await.unwrap();
    insert(&c, &[1]).await;
    assert_eq!(ids(&mut stream, 1).await, ints(&[1]));

    server.restart().await.unwrap();
    // The first write after the restart may meet a dead pooled connection (one retry).
    if c.insert_one(doc! {"_id": 2}).await.is_err() {
        c.insert_one(doc! {"_id": 2}).await.unwrap();
    }
    assert_eq!(ids(&mut stream, 1).await, ints(&[2]));
    assert!(last_stage(&seen).contains_key("resumeAfter"));
    assert!(seen.lock().unwrap().len() >= 2);
}

#[tokio::test]
async fn a_new_process_on_the_same_data_keeps_data_but_not_history() {
    let dir = std::env::temp_dir().join(format!(
        "keel-testkit-cs-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let token: ResumeToken;
    {
        let server = TestServer::builder()
            .replica_set("rs0", 1)
            .data_dir(&dir)
            .start()
            .await
            .unwrap();
        let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
        let c = client.database("app").collection::<Document>("d");
        let mut stream = c.watch().await.unwrap();
        insert(&c, &[1]).await;
        token = next(&mut stream).await.id;
        // An in-process restart keeps the oplog (mongod's oplog is durable).
        server.restart().await.unwrap();
        let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
        let c = client.database("app").collection::<Document>("d");
        insert(&c, &[2]).await;
        let mut resumed = c.watch().resume_after(token.clone()).await.unwrap();
        assert_eq!(ids(&mut resumed, 1).await, ints(&[2]));
    }
    let server = TestServer::builder()
        .replica_set("rs0", 1)
        .data_dir(&dir)
        .start()
        .await
        .unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let c = client.database("app").collection::<Document>("d");
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 2);
    let err = c.watch().resume_after(token).await.unwrap_err();
    assert_eq!(code(&err), Some(286), "history before this process is gone");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn database_and_cluster_streams_resume_after_errors_and_a_restart() {
    let server = TestServer::replica_set("rs0", 1).await.unwrap();
    let (client, seen) = recording(&server.uri()).await;
    let db = client.database("app");
    let c = db.collection::<Document>("dc");
    let mut db_stream = db.watch().await.unwrap();
    insert(&c, &[1]).await;
    assert_eq!(ids(&mut db_stream, 1).await, ints(&[1]));
    server
        .fail_command(FailCommand::get_more_after_cursor_checkout(6).times(1))
        .unwrap();
    insert(&c, &[2]).await;
    assert_eq!(ids(&mut db_stream, 1).await, ints(&[2]));
    assert_eq!(seen.lock().unwrap().len(), 2, "database stream resumed");
    assert_eq!(
        last_stage(&seen).get_bool("allChangesForCluster").ok(),
        None
    );

    let mut cluster = client.watch().await.unwrap();
    let other = client.database("other").collection::<Document>("x");
    insert(&other, &[3]).await;
    assert_eq!(ids(&mut cluster, 1).await, ints(&[3]));
    server
        .fail_command(FailCommand::get_more_after_cursor_checkout(10107).times(1))
        .unwrap();
    insert(&other, &[4]).await;
    assert_eq!(ids(&mut cluster, 1).await, ints(&[4]));
    assert_eq!(seen.lock().unwrap().len(), 4, "cluster stream resumed");
    assert_eq!(last_stage(&seen).get_bool("allChangesForCluster"), Ok(true));

    // A restart: both streams resume from their own tokens.
    server.restart().await.unwrap();
    if c.insert_one(doc! {"_id": 5}).await.is_err() {
        c.insert_one(doc! {"_id": 5}).await.unwrap();
    }
    insert(&other, &[6]).await;
    assert_eq!(ids(&mut db_stream, 1).await, ints(&[5]));
    assert_eq!(ids(&mut cluster, 2).await, ints(&[5, 6]));
}
