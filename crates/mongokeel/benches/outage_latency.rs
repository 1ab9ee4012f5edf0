//! How long one call takes while the server is down: the raw driver (its defaults, then with
//! Keel's server-selection timeout) against Keel (the first calls, then with the breaker open,
//! with the client CPU of a refused call). Prints a table; each call is timed once or as a
//! median, not by criterion, because the raw driver's figure is tens of seconds.
//!
//! The server is keel-testkit in another process, SIGKILLed for the outage and started again on
//! the same port (`KEEL_BENCH_SERVER=in-process` stops and restarts an in-process one instead;
//! `KEEL_BENCH_URI` is refused: a bench cannot stop a deployment). See `support::server`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use keel_core::ErrorKind;
use mongodb::{
    bson::{Document, doc},
    options::ClientOptions,
};
use mongokeel::{Keel, KeelConfig};

fn main() {
    support::client_runtime().block_on(run());
}

async fn run() {
    let mut server = support::BenchServer::from_env().await;
    println!("server: {}", server.describe());
    let config = KeelConfig::for_uri(server.uri()).unwrap();
    let selection = config.timeouts.server_selection;

    let raw_default = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let mut options = ClientOptions::parse(server.uri()).await.unwrap();
    options.server_selection_timeout = Some(selection);
    let raw_tuned = mongodb::Client::with_options(options).unwrap();
    let keel = Keel::builder(config.clone()).build().await.unwrap();
    for client in [&raw_default, &raw_tuned] {
        ping_raw(client).await.unwrap();
    }
    let items = keel.collection::<Document>("bench", "items");
    items.find_one(doc! {}).await.unwrap();

    server.stop().await;
    println!("one call while the server is down (production defaults):");
    // Keel: callers wait for the reconnection up to its bounded wait, then trip the breaker.
    let mut first = Vec::new();
    loop {
        let (took, outcome) = timed(items.find_one(doc! {})).await;
        let err = outcome.unwrap_err();
        if err.kind() == ErrorKind::CircuitOpen {
            break;
        }
        first.push(took);
    }
    println!(
        "  Keel, calls before the breaker opened ({})   {:>12.3?} each (max)",
        first.len(),
        first.iter().max().copied().unwrap_or_default()
    );
    const REFUSED: u32 = 10_000;
    let mut open = Vec::new();
    let cpu_before = support::cpu::thread_cpu();
    for _ in 0..REFUSED {
        let (took, outcome) = timed(items.find_one(doc! {})).await;
        assert_eq!(outcome.unwrap_err().kind(), ErrorKind::CircuitOpen);
        open.push(took);
    }
    let cpu = cpu_before
        .zip(support::cpu::thread_cpu())
        .map(|(before, after)| format!("{:?}", (after - before) / REFUSED))
        .unwrap_or_else(|| "n/a".to_owned());
    open.sort_unstable();
    println!(
        "  Keel, breaker open: median {:?}, p99 {:?}, client CPU {cpu} per call",
        open[open.len() / 2],
        open[open.len() * 99 / 100]
    );

    // The first call of each fails at once on its dead pooled connection; the next ones wait
    // for server selection, which is what every caller sees during an outage.
    for (client, label) in [
        (
            &raw_default,
            "raw driver, its defaults (30s selection)".to_owned(),
        ),
        (&raw_tuned, format!("raw driver, {selection:?} selection")),
    ] {
        let (first, _) = timed(ping_raw(client)).await;
        let (next, _) = timed(ping_raw(client)).await;
        println!("  {label:<44} first {first:>10.3?}, then {next:>10.3?} per call");
    }

    let back = Instant::now();
    server.restart().await;
    keel.ready().await.unwrap();
    items.find_one(doc! {}).await.unwrap();
    println!(
        "  Keel, first successful call after restart:  {:?}",
        back.elapsed()
    );
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
