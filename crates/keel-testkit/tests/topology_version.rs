//! NotPrimary-class errors carry the member's `topologyVersion` on every path (fail points,
//! member-state checks, write concern errors), as mongod ≥ 4.4 does
//! (jstests/replsets/notprimary_errors_return_topology_version.js), and the official driver
//! therefore treats a fail point's error as stale: the retried write and the resumed change
//! stream go straight back to the primary instead of waiting for a heartbeat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use keel_testkit::{FailCommand, TestServer};
use mongodb::Client;
use mongodb::bson::{Document, doc};
use support::raw::Raw;
use support::within;

/// The driver's heartbeat in these tests: a retry that had to wait for the next check would
/// take about this long.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A correctness bound, far below [`HEARTBEAT`]: the retry did not wait for a check.
const NO_HEARTBEAT_WAIT: Duration = Duration::from_secs(2);

async fn client_with_slow_heartbeat(server: &TestServer) -> Client {
    let mut options = mongodb::options::ClientOptions::parse(server.uri())
        .await
        .unwrap();
    options.heartbeat_freq = Some(HEARTBEAT);
    options.server_selection_timeout = Some(Duration::from_secs(5));
    Client::with_options(options).unwrap()
}

async fn hello_tv(raw: &mut Raw) -> Document {
    let hello = raw.command(doc! {"hello": 1, "$db": "admin"}).await;
    hello.get_document("topologyVersion").unwrap().clone()
}

#[tokio::test]
async fn every_not_primary_error_carries_the_members_topology_version() {
    let server = TestServer::replica_set("rs0", 2).await.unwrap();
    let mut primary = Raw::connect(server.members()[0]).await;
    let tv = hello_tv(&mut primary).await;
    let insert = || doc! {"insert": "c", "documents": [{"a": 1}], "$db": "app"};

    // Fail points: each NotPrimary-class code, as an error and as a writeConcernError.
    for code in [10107, 11602, 13435, 13436, 189] {
        server
            .fail_command(FailCommand::new(["insert"]).error_code(code).times(1))
            .unwrap();
        let e = primary.command(insert()).await;
        assert_eq!(e.get_i32("code").unwrap(), code);
        assert_eq!(e.get_document("topologyVersion").unwrap(), &tv, "{code}");
        server
            .fail_command(
                FailCommand::new(["insert"])
                    .write_concern_error(doc! {"code": code, "errmsg": "dummy"})
                    .times(1),
            )
            .unwrap();
        let w = primary.command(insert()).await;
        assert_eq!(w.get_f64("ok").unwrap(), 1.0);
        assert_eq!(w.get_document("topologyVersion").unwrap(), &tv, "{code}");
    }
    // Other errors (shutdown outside quiesce mode included) carry none.
    for code in [91, 11600, 1] {
        server
            .fail_command(FailCommand::new(["insert"]).error_code(code).times(1))
            .unwrap();
        let e = primary.command(insert()).await;
        assert_eq!(e.get_i32("code").unwrap(), code);
        assert!(!e.contains_key("topologyVersion"), "{code}");
    }
    // A fail point on a secondary reports that member's own topologyVersion.
    let mut secondary = Raw::connect(server.members()[1]).await;
    let secondary_tv = hello_tv(&mut secondary).await;
    server
        .fail_command(FailCommand::new(["ping"]).error_code(11602).times(1))
        .unwrap();
    let e = secondary.command(doc! {"ping": 1, "$db": "admin"}).await;
    assert_eq!(e.get_document("topologyVersion").unwrap(), &secondary_tv);

    // A real step-down: the counter grows, and errors report what hello reports.
    server.step_down().unwrap();
    let after = hello_tv(&mut primary).await;
    assert_eq!(
        after.get_object_id("processId"),
        tv.get_object_id("processId")
    );
    assert!(after.get_i64("counter").unwrap() > tv.get_i64("counter").unwrap());
    let e = primary.command(insert()).await;
    assert_eq!(e.get_i32("code").unwrap(), 10107);
    assert_eq!(e.get_document("topologyVersion").unwrap(), &after);
    let e = primary.command(doc! {"find": "c", "$db": "app"}).await;
    assert_eq!(e.get_i32("code").unwrap(), 13435);
    assert_eq!(e.get_document("topologyVersion").unwrap(), &after);
}

#[tokio::test]
async fn a_retried_write_after_a_fail_point_10107_does_not_wait_for_a_heartbeat() {
    let server = TestServer::replica_set("rs0", 1).await.unwrap();
    let client = client_with_slow_heartbeat(&server).await;
    let c = client.database("app").collection::<Document>("w");
    c.insert_one(doc! {"_id": 0}).await.unwrap();
    // mongod labels it RetryableWriteError itself (the insert carries a txnNumber).
    server
        .fail_command(FailCommand::new(["insert"]).error_code(10107).times(1))
        .unwrap();
    let started = Instant::now();
    within(c.insert_one(doc! {"_id": 1})).await.unwrap();
    let took = started.elapsed();
    eprintln!("retried insert after failCommand 10107 took {took:?}");
    assert!(
        took < NO_HEARTBEAT_WAIT,
        "the retry waited {took:?}: the driver did not treat the error as stale"
    );
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 2);
}

#[tokio::test]
async fn a_change_stream_resumes_after_11602_on_get_more() {
    let server = TestServer::replica_set("rs0", 1).await.unwrap();
    let client = client_with_slow_heartbeat(&server).await;
    let c = client.database("app").collection::<Document>("s");
    let mut stream = c.watch().await.unwrap();
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    let first = within(stream.next()).await.unwrap().unwrap();
    assert_eq!(first.document_key, Some(doc! {"_id": 1}));
    server
        .fail_command(
            FailCommand::new(["getMore"])
                .error_code(11602)
                .error_labels(["ResumableChangeStreamError"])
                .times(1),
        )
        .unwrap();
    c.insert_one(doc! {"_id": 2}).await.unwrap();
    let started = Instant::now();
    let second = within(stream.next()).await.unwrap().unwrap();
    eprintln!(
        "change stream resumed after 11602 in {:?}",
        started.elapsed()
    );
    assert_eq!(second.document_key, Some(doc! {"_id": 2}));
}
