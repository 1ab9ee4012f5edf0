//! The driver's own resume, when its `aggregate` is retried, loses no event: the mongodb
//! driver (3.9.1) takes the cached token out of its resume data while building the
//! `aggregate`, so a retried `aggregate` falls back to the stream's original options; the
//! consumer opens every stream with an explicit start point so that fallback replays instead of
//! starting from the present (`reader.rs`, `explicit`). keel demo runs lost the first writes
//! after a connection reset before.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use keel_change_streams::RunningConsumer;
use keel_testkit::FailCommand;
use mongokeel::Keel;
use support::*;

/// A testkit replica set keeping `oplog` changes, a writer with a `Keel` of its own, and a
/// running recording consumer `name`.
struct Setup {
    rs: Rs,
    writer: Keel,
    seen: Seen,
    consumer: RunningConsumer,
}

/// `None` against `KEEL_TEST_URI` (printing `why`).
async fn setup(oplog: usize, name: &str, why: &str) -> Option<Setup> {
    let rs = testkit_only(oplog, why).await?;
    let keel = keel(&rs.uri()).await;
    let writer = support::keel(&rs.uri()).await;
    let seen = Seen::default();
    let consumer = recording(keel, name, &seen).spawn().unwrap();
    running(&consumer).await;
    Some(Setup {
        rs,
        writer,
        seen,
        consumer,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_resume_whose_aggregate_is_retried_loses_no_event() {
    let Some(t) = setup(
        10_000,
        "retried-resume",
        "sets a fail point that closes connections",
    )
    .await
    else {
        return;
    };
    insert(&t.writer, 0..3).await;
    t.seen.wait_for("3 events", |ids| ids.len() == 3).await;
    // Writes keep coming while the stream's next `getMore` loses its connection, the driver's
    // resume `aggregate` loses its connection too, and the driver's retry of that `aggregate`
    // goes through: the writes between the `getMore` and the retry are the ones a stream
    // restarted from the present would skip.
    let writing = {
        let writer = t.writer.clone();
        let db = db();
        tokio::spawn(async move { insert_in(&writer, &db, 3..400).await })
    };
    t.rs.fail_command(
        FailCommand::new(["getMore", "aggregate"])
            .close_connection()
            .times(2),
    )
    .unwrap();
    writing.await.unwrap();
    t.seen
        .wait_for("every event written around the failed resume", |ids| {
            all_seen(ids, 400)
        })
        .await;
    assert!(first_sightings_in_order(&t.seen.ids()));
    t.consumer.shutdown().await.unwrap();
}

/// The same retried resume on a stream open for longer than the oplog holds: the driver's retry
/// starts from the stream's original start point, which is gone (`ChangeStreamHistoryLost`),
/// while the consumer's own token is still in the oplog. The consumer re-opens from its token
/// instead of taking the history-lost policy (the default would stop it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_driver_resume_past_the_oplog_resumes_from_the_consumers_token() {
    let Some(t) = setup(
        40,
        "retried-resume-old-start",
        "needs a tiny oplog and a fail point that closes connections",
    )
    .await
    else {
        return;
    };
    // 100 changes through a 40-entry oplog: the stream's start point is gone, the consumer's
    // latest token is not.
    t.seen
        .insert_and_see(&t.writer, 0..100, "the first 100 events")
        .await;
    t.rs.fail_command(
        FailCommand::new(["getMore", "aggregate"])
            .close_connection()
            .times(2),
    )
    .unwrap();
    t.seen
        .insert_and_see(&t.writer, 100..110, "the events after the failed resume")
        .await;
    assert!(t.consumer.stats().resumes() >= 1, "the consumer re-opened");
    assert!(first_sightings_in_order(&t.seen.ids()));
    assert_eq!(
        *t.consumer.status().borrow(),
        keel_change_streams::ConsumerStatus::Running
    );
    t.consumer.shutdown().await.unwrap();
}
