//! Opt-in replication lag: secondaries that lag serve stale reads until they apply the write,
//! and `w: "majority"` with `wtimeout` fails with `writeConcernError` 64 when a majority lags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{Acknowledgment, ReadPreference, SelectionCriteria, WriteConcern};
use support::{fast_options, within};

async fn lagging_set(lag: Duration, lagging: &[usize]) -> TestServer {
    let mut builder = TestServer::builder().replica_set("rs0", 3);
    for member in lagging {
        builder = builder.replication_lag(*member, lag);
    }
    builder.start().await.unwrap()
}

async fn client(server: &TestServer) -> mongodb::Client {
    mongodb::Client::with_options(fast_options(&server.uri()).await).unwrap()
}

fn secondary() -> SelectionCriteria {
    SelectionCriteria::ReadPreference(ReadPreference::Secondary {
        options: Default::default(),
    })
}

#[tokio::test]
async fn a_lagging_secondary_serves_stale_reads() {
    // Far longer than the test: the secondaries cannot have caught up.
    let server = lagging_set(Duration::from_secs(600), &[1, 2]).await;
    let client = client(&server).await;
    let c = client.database("app").collection::<Document>("lag");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    let stale = c
        .find_one(doc! {"_id": 1})
        .selection_criteria(secondary())
        .await
        .unwrap();
    assert_eq!(stale, None, "the secondary has not applied the insert");
    let n = c
        .count_documents(doc! {})
        .selection_criteria(secondary())
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        c.count_documents(doc! {}).await.unwrap(),
        1,
        "the primary has it"
    );
}

#[tokio::test]
async fn a_lagging_secondary_catches_up_after_its_lag() {
    let server = lagging_set(Duration::from_millis(200), &[1, 2]).await;
    let client = client(&server).await;
    let c = client.database("app").collection::<Document>("lag");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    // Await the state: the secondaries apply the write once the lag has passed.
    within(async {
        loop {
            let seen = c
                .find_one(doc! {"_id": 1})
                .selection_criteria(secondary())
                .await
                .unwrap();
            if seen.is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
}

fn majority(wtimeout: Duration) -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .w_timeout(wtimeout)
        .build()
}

#[tokio::test]
async fn majority_with_wtimeout_fails_with_write_concern_error_64_when_a_majority_lags() {
    let server = lagging_set(Duration::from_secs(600), &[1, 2]).await;
    let client = client(&server).await;
    let c = client.database("app").collection::<Document>("wc");
    let e = within(
        c.insert_one(doc! {"_id": 1})
            .write_concern(majority(Duration::from_millis(100))),
    )
    .await
    .unwrap_err();
    match &*e.kind {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(wce)) => {
            assert_eq!(wce.code, 64);
            assert!(wce.message.contains("timed out"), "{}", wce.message);
        }
        other => panic!("expected a write concern error, got {other:?}"),
    }
    assert_eq!(
        c.count_documents(doc! {}).await.unwrap(),
        1,
        "the write ran"
    );
    // w: 1 does not wait.
    within(c.insert_one(doc! {"_id": 2})).await.unwrap();
}

#[tokio::test]
async fn majority_succeeds_when_one_secondary_keeps_up() {
    let server = lagging_set(Duration::from_secs(600), &[2]).await;
    let client = client(&server).await;
    let c = client.database("app").collection::<Document>("wc");
    within(
        c.insert_one(doc! {"_id": 1})
            .write_concern(majority(Duration::from_secs(5))),
    )
    .await
    .unwrap();
    assert!(
        TestServer::builder()
            .replication_lag(0, Duration::from_secs(1))
            .start()
            .await
            .is_err(),
        "lag needs a replica set"
    );
    assert!(
        TestServer::builder()
            .replica_set("rs0", 2)
            .replication_lag(5, Duration::from_secs(1))
            .start()
            .await
            .is_err(),
        "no member 5"
    );
}

#[tokio::test]
async fn a_causally_consistent_read_on_a_lagging_secondary_waits_for_the_write() {
    let lag = Duration::from_millis(300);
    let server = lagging_set(lag, &[1, 2]).await;
    let client = client(&server).await;
    let c = client.database("app").collection::<Document>("causal");
    // Explicit sessions are causally consistent: the read carries afterClusterTime.
    let mut session = client.start_session().await.unwrap();
    c.insert_one(doc! {"_id": 1})
        .session(&mut session)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let seen = within(
        c.find_one(doc! {"_id": 1})
            .selection_criteria(secondary())
            .session(&mut session),
    )
    .await
    .unwrap();
    assert_eq!(
        seen,
        Some(doc! {"_id": 1}),
        "the read waited for its own write"
    );
    eprintln!(
        "causal read on a secondary lagging {lag:?} took {:?}",
        started.elapsed()
    );
}
