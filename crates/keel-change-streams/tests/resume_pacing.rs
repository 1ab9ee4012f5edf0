//! Resumes during an outage are paced (keel-retry backoff and budget) and wait for `Keel::ready`
//! (breaker, health): the server sees a handful of `aggregate`s, not a resume storm.
//!
//! Paused tokio time: 30 s of outage take a fraction of a second. A storm keeps the runtime
//! busy, so the paused clock stops advancing; the command count ends the window early then
//! (before the driver's own resumes were paced, this test never ended).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use keel_testkit::FailCommand;
use support::*;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(30);

/// Commands the server ran over [`WINDOW`] of paused time; stops early once a storm is obvious
/// (more than `storm` commands). A storm keeps the runtime busy so the paused clock never
/// reaches the window's end: a wall-clock watchdog (a thread, outside the runtime) fails the
/// test then instead of letting it hang.
async fn commands_over_window(keel: &mongokeel::Keel, storm: i64) -> i64 {
    let (alarm, stalled) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        let _ = alarm.send(());
    });
    let window = async {
        let before = server_commands(keel).await;
        let started = Instant::now();
        let mut now = before;
        while started.elapsed() < WINDOW && now - before <= storm {
            tokio::time::sleep(Duration::from_secs(1)).await;
            now = server_commands(keel).await;
        }
        now - before
    };
    tokio::select! {
        commands = window => commands,
        _ = stalled => panic!("{WINDOW:?} of paused time did not pass in 60 s: a resume storm"),
    }
}

/// A `getMore` that always fails with the `ResumableChangeStreamError` label while every
/// `aggregate` succeeds (a cursor the server keeps losing): each resume "works" for one reply.
/// The driver's `ChangeStream` re-runs `aggregate` by itself on such an error without any delay
/// (mongodb 3.9.1 `change_stream/common.rs`, `next_if_any`); the consumer paces that too.
#[tokio::test(start_paused = true)]
async fn a_get_more_that_always_fails_is_resumed_at_a_paced_rate() {
    let Some(rs) = testkit_only(10_000, "counts the testkit's own command counter").await else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    // Writes through a Keel of their own: the failing `getMore`s may open the consumer's
    // breaker, which would fail a write on the same Keel fast.
    let writer = support::keel(&rs.uri()).await;
    let seen = Seen::default();
    let consumer = recording(keel.clone(), "paced", &seen).spawn().unwrap();
    running(&consumer).await;
    insert(&writer, 0..3).await;
    seen.wait_for("3 events", |ids| ids.len() == 3).await;
    let idle = commands_over_window(&keel, 2_000).await;
    rs.fail_command(
        FailCommand::new(["getMore"])
            .error_code(10107)
            .error_labels(["ResumableChangeStreamError"]),
    )
    .unwrap();
    let failing = commands_over_window(&keel, 2_000).await;
    // Idle: monitoring `hello`s and the polls. Failing: each resume adds an `aggregate`
    // and a `hello`; the backoff (100 ms base, full jitter,
    // doubling to 10 s) and the budget (10 per 10 s) allow a dozen or two in 30 s. A storm is
    // thousands.
    assert!(
        failing <= idle + 150,
        "{failing} commands in {WINDOW:?} of failing getMores ({idle} idle)"
    );
    let resumes = consumer.stats().resumes();
    println!("{WINDOW:?}: {idle} commands idle, {failing} failing, {resumes} resumes");
    assert!((3..=40).contains(&resumes), "{resumes} counted resumes");
    rs.testkit("").unwrap().clear_fail_points();
    seen.insert_and_see(&writer, 3..6, "every event after the outage")
        .await;
    assert!(first_sightings_in_order(&seen.ids()));
    consumer.shutdown().await.unwrap();
}

/// Every connection to the server refused (the fault proxy in front of the consumer's only
/// member): each resume waits its backoff and then `Keel::ready()`, which holds it until the
/// server is reachable and the breaker lets calls through. Over 5 s the backoff alone would
/// allow about six (100 ms doubling, full jitter: 6 with the gate taken out); the gate leaves
/// one or two. Real time: the driver measures its server selection timeout with the wall clock
/// (`std::time::Instant` in mongodb 3.9.1 `Client::select_server`), so under paused time the
/// paused clock runs through this test's waits before the selection gives up (see the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_waited_out_at_the_gate_not_resumed_into() {
    let Some(rs) = testkit_only(10_000, "the fault proxy fronts one testkit member directly").await
    else {
        return;
    };
    let server = rs.testkit("").unwrap();
    let proxy = keel_testkit::FaultProxy::start(server.addr())
        .await
        .unwrap();
    let through = keel(&format!(
        "mongodb://{}/?directConnection=true",
        proxy.addr()
    ))
    .await;
    let writer = keel(&rs.uri()).await;
    let seen = Seen::default();
    let consumer = recording(through, "outage", &seen).spawn().unwrap();
    running(&consumer).await;
    insert(&writer, 0..3).await;
    seen.wait_for("3 events", |ids| ids.len() == 3).await;
    proxy.refuse_new(true).await.unwrap();
    proxy.reset_all();
    let mut status = consumer.status();
    let resuming = tokio::time::timeout(
        WAIT,
        status.wait_for(|s| matches!(s, keel_change_streams::ConsumerStatus::Resuming { .. })),
    )
    .await
    .is_ok();
    assert!(
        resuming,
        "never resuming: {:?}",
        *consumer.status().borrow()
    );
    let before = consumer.stats().resumes();
    let outage = Duration::from_secs(5);
    tokio::time::sleep(outage).await;
    let during = consumer.stats().resumes() - before;
    println!("{outage:?} of refused connections: {during} resumes");
    assert!(during <= 2, "{during} resumes in {outage:?} of outage");
    proxy.refuse_new(false).await.unwrap();
    seen.insert_and_see(&writer, 3..6, "every event after the outage")
        .await;
    assert!(first_sightings_in_order(&seen.ids()));
    consumer.shutdown().await.unwrap();
}

/// The server stops answering (paused: connections open, no replies) for 30 s of paused time:
/// the consumer resumes once, then waits at `Keel::ready()` (status `Resuming` throughout)
/// instead of re-opening into the outage; once the server answers again it continues with
/// nothing missing.
#[tokio::test(start_paused = true)]
async fn a_server_that_stops_answering_is_waited_out_with_one_resume() {
    let Some(rs) = testkit_only(10_000, "a real server cannot be paused by the test").await else {
        return;
    };
    let keel = keel(&rs.uri()).await;
    // The writes after the outage go through a Keel of their own: the consumer's first calls
    // after it may fail on connections from before the pause and open its breaker again, which
    // would fail a write on the same Keel fast (`ready()` says calls are let through at that
    // moment, not that the next one succeeds).
    let writer = support::keel(&rs.uri()).await;
    let seen = Seen::default();
    let consumer = recording(keel.clone(), "paused-server", &seen)
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&writer, 0..3).await;
    seen.wait_for("3 events", |ids| ids.len() == 3).await;
    let server = rs.testkit("").unwrap();
    server.pause();
    let started = Instant::now();
    let mut resuming_since = None;
    while started.elapsed() < WINDOW {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let resuming = matches!(
            *consumer.status().borrow(),
            keel_change_streams::ConsumerStatus::Resuming { .. }
        );
        if resuming && resuming_since.is_none() {
            resuming_since = Some(started.elapsed());
        }
    }
    let resumes = consumer.stats().resumes();
    println!("{WINDOW:?} without replies: {resumes} resumes, resuming from {resuming_since:?}");
    assert!(resuming_since.is_some(), "the outage was never noticed");
    assert!(
        matches!(
            *consumer.status().borrow(),
            keel_change_streams::ConsumerStatus::Resuming { .. }
        ),
        "still waiting at the end: {:?}",
        *consumer.status().borrow()
    );
    assert!(
        (1..=2).contains(&resumes),
        "{resumes} resumes in {WINDOW:?}"
    );
    server.resume();
    let ready = tokio::time::timeout(WAIT, keel.ready()).await;
    assert!(matches!(ready, Ok(Ok(()))), "{ready:?}");
    seen.insert_and_see(&writer, 3..6, "every event after the outage")
        .await;
    assert!(first_sightings_in_order(&seen.ids()));
    consumer.shutdown().await.unwrap();
}
