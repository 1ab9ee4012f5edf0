//! Elections when the primary stops answering: a stopped (killed) or paused primary is replaced
//! by a secondary after the set's election timeout, with a new term, and the official driver
//! follows it; `replSetGetConfig` reports the timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use keel_testkit::TestServer;
use mongodb::bson::{Document, doc, oid::ObjectId};
use support::raw::Raw;
use support::{fast_options, within};

/// Short, so the tests stay fast; mongod's default is 10 s.
const ELECTION_TIMEOUT: Duration = Duration::from_millis(300);

async fn set(members: usize) -> TestServer {
    TestServer::builder()
        .replica_set("rs0", members)
        .election_timeout(ELECTION_TIMEOUT)
        .start()
        .await
        .unwrap()
}

async fn hello(member: std::net::SocketAddr) -> Document {
    Raw::connect(member)
        .await
        .command(doc! {"hello": 1, "$db": "admin"})
        .await
}

fn election_id(hello: &Document) -> ObjectId {
    hello.get_object_id("electionId").unwrap()
}

#[tokio::test]
async fn a_killed_primary_is_replaced_and_the_driver_follows() {
    let server = set(3).await;
    let client = mongodb::Client::with_options(fast_options(&server.uri()).await).unwrap();
    let c = client.database("app").collection::<Document>("e");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    let before = hello(server.members()[0]).await;

    let stopped = Instant::now();
    server.stop_member(0).await.unwrap();
    assert!(!server.is_member_running(0) && server.is_running());
    let new_primary = within(server.wait_for_new_primary(0)).await;
    let took = stopped.elapsed();
    eprintln!("election after the primary was killed took {took:?} (timeout {ELECTION_TIMEOUT:?})");
    assert_eq!(new_primary, 1, "the next answering member");
    assert!(took >= ELECTION_TIMEOUT, "no election before the timeout");

    let after = hello(server.members()[1]).await;
    assert!(after.get_bool("isWritablePrimary").unwrap());
    assert!(election_id(&after) > election_id(&before), "a new term");
    assert_eq!(
        after.get_i32("setVersion").unwrap(),
        1,
        "elections keep setVersion"
    );
    let (tv0, tv1) = (
        before.get_document("topologyVersion").unwrap(),
        after.get_document("topologyVersion").unwrap(),
    );
    assert!(tv1.get_i64("counter").unwrap() > tv0.get_i64("counter").unwrap());

    // The driver writes to the new primary by itself.
    within(c.insert_one(doc! {"_id": 2})).await.unwrap();
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 2);

    // The old primary comes back as a secondary, a new process.
    server.start_member(0).await.unwrap();
    let back = hello(server.members()[0]).await;
    assert!(!back.get_bool("isWritablePrimary").unwrap());
    assert_eq!(
        back.get_str("primary").unwrap(),
        server.members()[1].to_string()
    );
    assert_ne!(
        back.get_document("topologyVersion")
            .unwrap()
            .get_object_id("processId"),
        tv0.get_object_id("processId")
    );
}

#[tokio::test]
async fn a_paused_primary_is_replaced_and_resumes_as_a_secondary() {
    let server = set(3).await;
    let mut old = Raw::connect(server.members()[0]).await;
    server.pause_member(0).unwrap();
    assert_eq!(within(server.wait_for_new_primary(0)).await, 1);
    let status = hello(server.members()[2]).await;
    assert_eq!(
        status.get_str("primary").unwrap(),
        server.members()[1].to_string()
    );
    let members = Raw::connect(server.members()[1])
        .await
        .command(doc! {"replSetGetStatus": 1, "$db": "admin"})
        .await;
    let states: Vec<i32> = members
        .get_array("members")
        .unwrap()
        .iter()
        .map(|m| m.as_document().unwrap().get_i32("state").unwrap())
        .collect();
    assert_eq!(states, vec![8, 1, 2], "the frozen member is DOWN");
    // Its held request is answered once it resumes, in its new role.
    let pending = tokio::spawn(async move {
        old.command(doc! {"insert": "c", "documents": [{"a": 1}], "$db": "app"})
            .await
    });
    server.resume_member(0).unwrap();
    let reply = within(pending).await.unwrap();
    assert_eq!(reply.get_i32("code").unwrap(), 10107);
}

#[tokio::test]
async fn step_down_and_elect_still_act_at_once_and_config_reports_the_timeout() {
    let server = set(3).await;
    server.stop_member(1).await.unwrap();
    assert_eq!(
        server.step_down().unwrap(),
        2,
        "step_down skips a stopped member"
    );
    server.elect(0).unwrap();
    assert_eq!(server.primary(), Some(0));
    let config = Raw::connect(server.members()[0])
        .await
        .command(doc! {"replSetGetConfig": 1, "$db": "admin"})
        .await;
    let config = config.get_document("config").unwrap();
    assert_eq!(config.get_str("_id").unwrap(), "rs0");
    assert_eq!(config.get_array("members").unwrap().len(), 3);
    assert_eq!(
        config
            .get_document("settings")
            .unwrap()
            .get_i64("electionTimeoutMillis")
            .unwrap(),
        300
    );
    assert_eq!(server.election_timeout(), Some(ELECTION_TIMEOUT));
    let default = TestServer::replica_set("rs1", 1).await.unwrap();
    assert_eq!(default.election_timeout(), Some(Duration::from_secs(10)));
    assert!(
        TestServer::builder()
            .replica_set("rs2", 1)
            .election_timeout(Duration::ZERO)
            .start()
            .await
            .is_err()
    );
    assert!(server.stop_member(9).await.is_err());
    assert!(TestServer::start().await.unwrap().pause_member(0).is_err());
}
