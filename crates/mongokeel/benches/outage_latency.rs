//! What callers see when the database goes away, with production defaults: in a hard outage
//! (the server SIGKILLed) the time from the kill to the first fail-fast answer and the latency
//! of the calls that follow, against the raw driver; in an election (the primary of a
//! three-member set stops, the others elect a new one after mongod's 10 s election timeout) the
//! share of calls made meanwhile that succeed. Prints a table; calls are timed one by one, not
//! by criterion, because the figures run to seconds.
//!
//! The hard outage runs against keel-testkit in another process, SIGKILLed and started again on
//! the same port (`KEEL_BENCH_SERVER=in-process` stops and restarts an in-process one instead;
//! `KEEL_BENCH_URI` is refused: a bench cannot stop a deployment). See `support::server`. The
//! election runs against an in-process keel-testkit replica set (the binary runs one set per
//! process and cannot stop one member).
//!
//! Uses only the `Keel` handle and error classes, so the same file measures an older Keel too.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use keel_core::{Error, ErrorClass};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};

/// Calls timed once the outage is answered fast.
const OUTAGE_CALLS: usize = 10_000;
/// How long the bench waits for a first fail-fast answer before it gives up on one.
const GIVE_UP: Duration = Duration::from_secs(120);
/// mongod's default `settings.electionTimeoutMillis`.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a new request arrives during the election test, each in its own task, as a web
/// service's requests do.
const ARRIVAL: Duration = Duration::from_millis(50);

fn main() {
    support::client_runtime().block_on(async {
        hard_outage().await;
        election().await;
    });
}

/// Refused without trying: no member reachable (pool-core) or an open circuit.
fn failed_fast(err: &Error) -> bool {
    err.class() == ErrorClass::Unavailable
}

async fn hard_outage() {
    let mut server = support::BenchServer::from_env().await;
    println!(
        "hard outage, production defaults; server: {}",
        server.describe()
    );
    let config = KeelConfig::for_uri(server.uri()).unwrap();
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    ping_raw(&raw).await.unwrap();
    let keel = Keel::builder(config).build().await.unwrap();
    let items = keel.collection::<Document>("bench", "items");
    items.find_one(doc! {}).await.unwrap();

    server.stop().await;
    let killed = Instant::now();
    // The raw driver's caller waits for its server selection (30 s) meanwhile, on this thread
    // but idle, so it does not slow Keel's calls down.
    let raw_call = tokio::spawn(async move {
        let (first, _) = timed(ping_raw(&raw)).await;
        let (next, _) = timed(ping_raw(&raw)).await;
        (first, next)
    });

    // One caller, one call after the other from the moment of the kill.
    let mut before_fast = Vec::new();
    let first_fast = loop {
        let (took, outcome) = timed(items.find_one(doc! {})).await;
        match outcome {
            Err(err) if failed_fast(&err) => break Some((killed.elapsed(), took, err)),
            _ if killed.elapsed() > GIVE_UP => break None,
            _ => before_fast.push(took),
        }
    };
    match &first_fast {
        Some((after, took, err)) => println!(
            "  kill → first fail-fast answer: {after:>10.3?} ({} slower calls before it, the \
             longest {:.3?}; it took {took:.3?}: {})",
            before_fast.len(),
            before_fast.iter().max().copied().unwrap_or_default(),
            first_line(err)
        ),
        None => println!(
            "  kill → first fail-fast answer: none within {GIVE_UP:?} ({} calls, the longest \
             {:.3?})",
            before_fast.len(),
            before_fast.iter().max().copied().unwrap_or_default()
        ),
    }

    // The client's CPU per refused call is not printed: the thread's CPU clock
    // (`support::cpu`) advances only at scheduler ticks, longer than these calls take.
    let mut during = Vec::with_capacity(OUTAGE_CALLS);
    let mut fast = 0;
    for _ in 0..OUTAGE_CALLS {
        let (took, outcome) = timed(items.find_one(doc! {})).await;
        fast += usize::from(outcome.as_ref().is_err_and(failed_fast));
        during.push(took);
    }
    during.sort_unstable();
    println!(
        "  the next {OUTAGE_CALLS} calls: p50 {:.3?}, p99 {:.3?}, {fast} failed fast",
        during[during.len() / 2],
        during[during.len() * 99 / 100],
    );
    let (raw_first, raw_next) = raw_call.await.unwrap();
    println!(
        "  raw driver (its defaults, 30 s selection): first call {raw_first:.3?}, then \
         {raw_next:.3?} per call"
    );

    let back = Instant::now();
    server.restart().await;
    keel.ready().await.unwrap();
    items.find_one(doc! {}).await.unwrap();
    println!(
        "  first successful call after the restart: {:?}",
        back.elapsed()
    );
    let _report = keel.shutdown().await;
}

async fn election() {
    let rs = TestServer::builder()
        .replica_set("rs0", 3)
        .election_timeout(ELECTION_TIMEOUT)
        .start()
        .await
        .unwrap();
    println!(
        "election, production defaults; in-process keel-testkit replica set of 3, election \
         timeout {ELECTION_TIMEOUT:?} (mongod's default)"
    );
    let keel = Keel::builder(KeelConfig::for_uri(rs.uri()).unwrap())
        .build()
        .await
        .unwrap();
    let items = keel.collection::<Document>("bench", "election");
    items.insert_one(doc! { "_id": -1 }).await.unwrap();

    // A request every ARRIVAL, each a task of its own; (started, took, outcome) of each.
    let stop = Arc::new(AtomicBool::new(false));
    let arrivals = tokio::spawn({
        let (items, stop) = (items.clone(), Arc::clone(&stop));
        async move {
            let mut requests = Vec::new();
            let mut id = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                let items = items.clone();
                requests.push(tokio::spawn(async move {
                    let started = Instant::now();
                    let outcome = items.insert_one(doc! { "_id": id }).await.map(|_| ());
                    (started, started.elapsed(), outcome)
                }));
                tokio::time::sleep(ARRIVAL).await;
            }
            requests
        }
    });
    // Steady traffic first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let old = rs.primary().unwrap();
    rs.stop_member(old).await.unwrap();
    let stopped = Instant::now();
    let new = rs.wait_for_new_primary(old).await;
    let elected = Instant::now();
    // A little steady traffic again, then let every request finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);

    let mut during = 0_u32;
    let mut succeeded = 0_u32;
    let mut longest = Duration::ZERO;
    let mut failures = Vec::new();
    for request in arrivals.await.unwrap() {
        let (started, took, outcome) = request.await.unwrap();
        // Made while no primary was known, or still running when the old one stopped.
        if started + took < stopped || started > elected {
            continue;
        }
        during += 1;
        longest = longest.max(took);
        match outcome {
            Ok(()) => succeeded += 1,
            Err(err) => failures.push(first_line(&err)),
        }
    }
    println!(
        "  member {new} elected {:.3?} after the primary stopped",
        elected - stopped
    );
    println!(
        "  requests during the election (one every {ARRIVAL:?}): {succeeded} of {during} \
         succeeded ({:.0} %), the longest took {longest:.3?}",
        100.0 * f64::from(succeeded) / f64::from(during.max(1))
    );
    failures.dedup();
    for failure in failures.iter().take(3) {
        println!("    failed: {failure}");
    }
    let _report = keel.shutdown().await;
}

/// The error's first line, for a table row.
fn first_line(err: &Error) -> String {
    let text = err.to_string();
    text.lines().next().unwrap_or_default().to_owned()
}

async fn ping_raw(client: &mongodb::Client) -> mongodb::error::Result<Document> {
    client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
}

async fn timed<T>(future: impl std::future::Future<Output = T>) -> (Duration, T) {
    let started = Instant::now();
    let out = future.await;
    (started.elapsed(), out)
}
