//! A dead deployment versus a failover: the first call of an outage fails within about
//! `timeouts.outage_grace` (not after server selection or the deadline), even when it was
//! already with the driver; calls made while a replica set steps down, or elects a new primary
//! after the old one died, all succeed; a black hole is seen as an outage once a check and its
//! retry time out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use keel_core::{ErrorClass, ErrorKind};
use keel_integration::{
    Deployment, PATIENCE, find_one_fails, heal_black_hole, reconnects_and_finds_one,
    skip_against_real, test_config,
};
use keel_pool_core::ConnectionState;
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

/// A bound that only a fail-fast meets: the configuration below would make a waiting call take
/// 10 s (server selection) or more. Generous against a loaded machine; the exact figure is the
/// `outage_latency` bench's.
const FAST: Duration = Duration::from_secs(5);

/// The integration tests' configuration with long waits, so that only the outage grace can end
/// a call quickly.
fn patient_config(uri: &str) -> keel_config::KeelConfig {
    let mut config = test_config(uri);
    for (path, value) in [
        ("timeouts.server_selection", "10s"),
        ("timeouts.attempt", "15s"),
        ("timeouts.deadline", "30s"),
        ("timeouts.outage_grace", "1s"),
        ("timeouts.election_wait", "12s"),
    ] {
        config.set(path, value).unwrap();
    }
    config.validate().unwrap();
    config
}

/// A Keel on `uri` with [`patient_config`].
async fn patient_keel(uri: &str) -> Keel {
    Keel::builder(patient_config(uri)).build().await.unwrap()
}

/// The test's `items` collection in `deployment`, holding `{ _id: 1 }`.
async fn items_with_one(
    keel: &Keel,
    deployment: &Deployment,
    test: &str,
) -> mongokeel::Collection<Document> {
    let items = keel.collection::<Document>(&deployment.database(test), "items");
    items.insert_one(doc! { "_id": 1 }).await.unwrap();
    items
}

async fn wait_for_state(keel: &Keel, wanted: ConnectionState) -> Duration {
    let started = Instant::now();
    let mut states = keel.subscribe();
    tokio::time::timeout(PATIENCE, states.wait_for(|s| *s == wanted))
        .await
        .unwrap_or_else(|_| panic!("state never became {wanted}, is {}", keel.state()))
        .unwrap();
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_of_an_outage_fails_within_the_grace() {
    let deployment = Deployment::start().await;
    // The testkit server is stopped for real; a real deployment is cut off at the proxy, which
    // a client cannot tell from a stopped server (connections refused and reset).
    let (proxy, uri) = deployment.proxied().await;
    let keel = patient_keel(&uri).await;
    let items = items_with_one(&keel, &deployment, "fail_fast").await;

    let stopped = Instant::now();
    match deployment.testkit("stop the server (cut off at the proxy instead)") {
        Some(server) => server.stop().await,
        None => {
            proxy.refuse_new(true).await.unwrap();
            proxy.reset_all();
        }
    }
    // The first call of the outage, made before Keel knows: it goes to the driver, meets the
    // dropped connection, and the driver retries it in its server selection (here 10 s). Keel
    // ends it once the monitors have failed a check and its retry and the grace has passed.
    let err = find_one_fails(&items, "the first call of an outage must not hang").await;
    let took = stopped.elapsed();
    eprintln!("first call of the outage failed {took:?} after the stop: {err}");
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.retry_after().is_some(), "{err}");
    assert!(took < FAST, "failed after {took:?}, not within the grace");
    assert_eq!(keel.state(), ConnectionState::Unreachable);
    // The next calls of the same outage fail at once.
    let started = Instant::now();
    let next = items.find_one(doc! { "_id": 1 }).await.unwrap_err();
    eprintln!("the next call failed after {:?}", started.elapsed());
    assert_eq!(next.class(), ErrorClass::Unavailable, "{next}");
    assert!(next.proves_not_applied(), "refused before sending: {next}");
    // The breaker counts these refusals as failures: it opens within its few consecutive
    // failures, so health (when enabled) and the breaker's metrics show the outage too.
    let breaker = keel.breaker().expect("the default stack has a breaker");
    for _ in 0..20 {
        if breaker.state().is_open() {
            break;
        }
        let err = items.find_one(doc! { "_id": 1 }).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    }
    assert!(breaker.state().is_open(), "{:?}", breaker.state());

    match deployment.testkit("restart the server") {
        Some(server) => server.restart().await.unwrap(),
        None => proxy.refuse_new(false).await.unwrap(),
    }
    reconnects_and_finds_one(&keel, &items, "the client reconnects by itself").await;
}

/// Callers inserting and reading back their own documents without pause; any failure panics
/// the caller, so [`Traffic::finish_all_stored`] fails the test.
struct Traffic {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    workers: Vec<tokio::task::JoinHandle<u64>>,
}

impl Traffic {
    fn start(items: &mongokeel::Collection<Document>, callers: i64, during: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let workers = (0..callers)
            .map(|worker| {
                let (items, stop, done) = (items.clone(), Arc::clone(&stop), Arc::clone(&done));
                tokio::spawn(async move {
                    let mut acknowledged = 0_u64;
                    let mut next = 0_i64;
                    while !stop.load(Ordering::Relaxed) {
                        let id = worker * 1_000_000 + next;
                        next += 1;
                        items
                            .insert_one(doc! { "_id": id, "worker": worker })
                            .await
                            .unwrap_or_else(|e| panic!("insert {id} during {during}: {e}"));
                        acknowledged += 1;
                        let found = items
                            .find_one(doc! { "_id": id })
                            .await
                            .unwrap_or_else(|e| panic!("find {id} during {during}: {e}"));
                        assert!(found.is_some(), "acknowledged insert {id} not found");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    acknowledged
                })
            })
            .collect();
        Self {
            stop,
            done,
            workers,
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Awaits `more` further completed insert-and-find pairs.
    async fn progress(&self, more: u64) {
        let at_least = self.done() + more;
        tokio::time::timeout(PATIENCE, async {
            while self.done() < at_least {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("calls stopped making progress before {at_least}"));
    }

    /// Stops the callers and checks that every acknowledged insert is stored exactly once in
    /// `items`. Panics if any call failed.
    async fn finish_all_stored(self, items: &mongokeel::Collection<Document>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut acknowledged = 0;
        for worker in self.workers {
            acknowledged += worker.await.expect("no call failed");
        }
        assert_eq!(
            items.count_documents(doc! {}).await.unwrap(),
            acknowledged,
            "every acknowledged insert stored exactly once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_during_a_step_down_all_succeed() {
    if skip_against_real("step a replica set down on request") {
        return;
    }
    let rs = TestServer::replica_set("rs0", 3).await.unwrap();
    let keel = patient_keel(&rs.uri()).await;
    let items = keel.collection::<Document>("keel_it_step_down", "items");
    let traffic = Traffic::start(&items, 4, "a step-down");
    traffic.progress(20).await;
    for round in 0..3 {
        let new_primary = rs.step_down().unwrap();
        assert_eq!(rs.primary(), Some(new_primary), "round {round}");
        traffic.progress(40).await;
    }
    rs.elect(0).unwrap();
    traffic.progress(40).await;
    traffic.finish_all_stored(&items).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_during_an_election_after_the_primary_dies_wait_and_all_succeed() {
    if skip_against_real("stop the primary's process and let the others elect a new one") {
        return;
    }
    // An election three times the outage grace: only calls that wait for it can succeed.
    let election = Duration::from_secs(3);
    let rs = TestServer::builder()
        .replica_set("rs0", 3)
        .election_timeout(election)
        .start()
        .await
        .unwrap();
    let keel = patient_keel(&rs.uri()).await;
    let items = keel.collection::<Document>("keel_it_election", "items");
    let traffic = Traffic::start(&items, 4, "an election");
    traffic.progress(20).await;

    let old_primary = rs.primary().unwrap();
    rs.stop_member(old_primary).await.unwrap();
    let stopped = Instant::now();
    let before = traffic.done();
    // The stopped member fails its checks, the secondaries answer: an election, not an
    // outage, so no call fails fast.
    let new_primary = tokio::time::timeout(PATIENCE, rs.wait_for_new_primary(old_primary))
        .await
        .expect("the secondaries elect a new primary");
    eprintln!(
        "new primary {new_primary} elected {:?} after the stop",
        stopped.elapsed()
    );
    traffic.progress(40).await;
    assert_ne!(keel.state(), ConnectionState::Unreachable);
    eprintln!(
        "{} calls completed across the election, none failed",
        traffic.done() - before
    );
    traffic.finish_all_stored(&items).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_is_seen_as_an_outage_when_a_heartbeat_times_out() {
    let deployment = Deployment::start().await;
    let (proxy, uri) = deployment.proxied().await;
    // heartbeat 500ms and connect timeout 1s (test_config): the next check (at most 500 ms
    // away) times out after 1 s, and so does its immediate retry on a new connection: about
    // 2.5 s in all (measured 2.45 s). In general: up to heartbeatFrequencyMS, plus the check's
    // timeout (connectTimeoutMS; plus heartbeatFrequencyMS on a server that streams its
    // hellos), plus connectTimeoutMS for the retry.
    let keel = patient_keel(&uri).await;
    let items = items_with_one(&keel, &deployment, "black_hole").await;

    proxy.black_hole(true);
    let detected = wait_for_state(&keel, ConnectionState::Unreachable).await;
    eprintln!(
        "black hole seen as unreachable after {detected:?} (heartbeat 500ms + 2 x connect 1s)"
    );
    let started = Instant::now();
    let err = find_one_fails(&items, "a call into a known black hole must not hang").await;
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());

    heal_black_hole(&proxy, &keel, &items).await;
}
