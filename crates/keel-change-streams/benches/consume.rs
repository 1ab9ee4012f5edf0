//! `cargo bench -p keel-change-streams`: a consumer's cost against the raw driver, on a
//! one-member keel-testkit replica set in another process, as users run MongoDB (mongokeel's
//! bench server: `KEEL_BENCH_SERVER=in-process` puts it in this process, `KEEL_BENCH_URI` names
//! a real replica set).
//!
//! 1. Events/s through a no-op handler against the raw driver `ChangeStream` draining the same
//!    events (`startAtOperationTime` before the same inserts), best of a few alternating rounds,
//!    and the ratio (goal ≥ 0.9).
//! 2. Write-to-handler latency p50/p99: one insert at a time, from before `insert_one` to the
//!    handler's call.
//! 3. Time from a connection reset (FaultProxy) to the next delivered event, written right after
//!    the reset, and the same under the raw driver `ChangeStream` read continuously (a `getMore`
//!    in flight at each reset, as in the consumer). Both are the driver's own resume, whose
//!    `aggregate` waits for server selection: when the failed `getMore` marked the server
//!    Unknown before the monitor's streaming `hello` failed, the monitor does not retry at once
//!    (mongodb 3.9.1 `sdam/monitor.rs` `check_server`, after the server-monitoring spec: only a
//!    server that was available is re-checked at once) and the next check comes after
//!    `minHeartbeatFrequencyMS` (500 ms); otherwise it is re-checked at once. `KEEL_BENCH_ONLY=reset` runs only this part (`throughput`, `latency`: the others), `KEEL_BENCH_TRACE=1` prints the raw
//!    client's heartbeats, server changes and commands after each reset.
//!
//! Prints a table; each figure is timed directly, not by criterion (a reset-to-event time is one
//! sample per reset). `KEEL_BENCH_EVENTS` sets the events of part 1 (default 20 000).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use keel_change_streams::{ChangeConsumer, ConsumerStatus, MemoryCheckpointStore, StartFrom};
use keel_testkit::FaultProxy;
use mongodb::bson::{Document, Timestamp, doc};
use mongokeel::{Keel, KeelConfig};
use tokio::sync::Notify;

// The server module is mongokeel's bench server (std and keel-testkit only), included rather
// than copied.
#[allow(dead_code)]
#[path = "../../mongokeel/benches/support/server.rs"]
mod server;

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn connect(uri: &str) -> Keel {
    Keel::builder(KeelConfig::for_uri(uri).unwrap())
        .build()
        .await
        .unwrap()
}

async fn operation_time(client: &mongodb::Client) -> Timestamp {
    let reply = client
        .database("bench")
        .run_command(doc! {"ping": 1})
        .await
        .unwrap();
    reply.get_timestamp("operationTime").unwrap()
}

/// Counts handled events and wakes a waiter at each.
#[derive(Clone, Default)]
struct Counter {
    n: Arc<AtomicU64>,
    changed: Arc<Notify>,
}

impl Counter {
    async fn wait_for(&self, n: u64) {
        loop {
            let notified = self.changed.notified();
            if self.n.load(Ordering::Relaxed) >= n {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Resets that waited for the driver's next server check (`minHeartbeatFrequencyMS`, 500 ms)
/// rather than resuming at once.
fn slow(gaps: &[Duration]) -> usize {
    gaps.iter()
        .filter(|g| **g > Duration::from_millis(250))
        .count()
}

async fn run() {
    let events: u64 = std::env::var("KEEL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rs =
        server::BenchServer::replica_set_from_env(usize::try_from(events).unwrap() * 4 + 10_000)
            .await;
    let raw = mongodb::Client::with_uri_str(rs.uri()).await.unwrap();
    let keel = connect(rs.uri()).await;
    println!(
        "server: {} (a one-member replica set), {events} events per round",
        rs.describe()
    );

    let only = std::env::var("KEEL_BENCH_ONLY").ok();
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if part("throughput") {
        throughput(&raw, &keel, events).await;
    }
    if part("latency") {
        latency(&raw, &keel).await;
    }
    if part("reset") {
        reset(&rs, &raw).await;
        raw_reset(&rs, &raw).await;
    }
}

async fn throughput(raw: &mongodb::Client, keel: &Keel, events: u64) {
    // 1. Throughput.
    let mut raw_rates = Vec::new();
    let mut keel_rates = Vec::new();
    for round in 0..3 {
        let coll = format!("thru{round}");
        let at = operation_time(raw).await;
        let items = raw.database("bench").collection::<Document>(&coll);
        let mut next = 0_u64;
        while next < events {
            let batch: Vec<Document> = (next..(next + 1000).min(events))
                .map(|i| doc! {"_id": i64::try_from(i).unwrap(), "payload": "x".repeat(64)})
                .collect();
            next += u64::try_from(batch.len()).unwrap();
            items.insert_many(batch).await.unwrap();
        }
        // Raw driver.
        let started = Instant::now();
        let mut stream = items.watch().start_at_operation_time(at).await.unwrap();
        let mut seen = 0;
        while seen < events {
            stream.next().await.unwrap().unwrap();
            seen += 1;
        }
        raw_rates.push(events as f64 / started.elapsed().as_secs_f64());
        drop(stream);
        // The consumer, no-op handler.
        let counter = Counter::default();
        let count = counter.clone();
        let started = Instant::now();
        let consumer = ChangeConsumer::<Document>::builder(keel.clone(), &format!("bench{round}"))
            .collection("bench", &coll)
            .start_from(StartFrom::At(at))
            .store(MemoryCheckpointStore::new())
            .handler(move |_event| {
                let count = count.clone();
                async move {
                    count.n.fetch_add(1, Ordering::Relaxed);
                    count.changed.notify_one();
                    Ok::<_, String>(())
                }
            })
            .spawn()
            .unwrap();
        counter.wait_for(events).await;
        keel_rates.push(events as f64 / started.elapsed().as_secs_f64());
        consumer.shutdown().await.unwrap();
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0_f64, f64::max);
    let (raw_best, keel_best) = (best(&raw_rates), best(&keel_rates));
    println!("throughput (best of 3 rounds, events/s):");
    println!("  raw driver ChangeStream     {raw_best:>10.0}   rounds {raw_rates:.0?}");
    println!("  ChangeConsumer, no-op       {keel_best:>10.0}   rounds {keel_rates:.0?}");
    println!(
        "  ratio consumer / raw        {:>10.2}",
        keel_best / raw_best
    );
}

async fn latency(raw: &mongodb::Client, keel: &Keel) {
    // 2. Write-to-handler latency.
    let base = Instant::now();
    let delays = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&delays);
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "latency")
        .collection("bench", "latency")
        .handler(move |event| {
            let sink = Arc::clone(&sink);
            async move {
                let sent = event
                    .full_document
                    .as_ref()
                    .and_then(|d| d.get_i64("sent_us").ok())
                    .unwrap();
                let now = i64::try_from(base.elapsed().as_micros()).unwrap();
                sink.lock()
                    .unwrap()
                    .push(Duration::from_micros(u64::try_from(now - sent).unwrap()));
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap();
    let mut status = consumer.status();
    status
        .wait_for(|s| *s == ConsumerStatus::Running)
        .await
        .unwrap();
    let latency = raw.database("bench").collection::<Document>("latency");
    let samples: i64 = 500;
    for i in 0..samples {
        let sent = i64::try_from(base.elapsed().as_micros()).unwrap();
        latency
            .insert_one(doc! {"_id": i, "sent_us": sent})
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    while (delays.lock().unwrap().len() as i64) < samples {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    consumer.shutdown().await.unwrap();
    let mut sorted = delays.lock().unwrap().clone();
    sorted.sort();
    println!("write-to-handler latency ({samples} single inserts, 2 ms apart):");
    println!(
        "  p50 {:?} · p99 {:?} · max {:?}",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1]
    );
}

async fn reset(rs: &server::BenchServer, raw: &mongodb::Client) {
    // 3. Connection reset to the next delivered event.
    let proxy = FaultProxy::start(rs.first_host()).await.unwrap();
    let through = connect(&format!(
        "mongodb://{}/?directConnection=true",
        proxy.addr()
    ))
    .await;
    let counter = Counter::default();
    let count = counter.clone();
    let consumer = ChangeConsumer::<Document>::builder(through, "reset")
        .collection("bench", "reset")
        .max_await_time(Duration::from_millis(200))
        .handler(move |_event| {
            let count = count.clone();
            async move {
                count.n.fetch_add(1, Ordering::Relaxed);
                count.changed.notify_one();
                Ok::<_, String>(())
            }
        })
        .spawn()
        .unwrap();
    let mut status = consumer.status();
    status
        .wait_for(|s| *s == ConsumerStatus::Running)
        .await
        .unwrap();
    let writes = raw.database("bench").collection::<Document>("reset");
    let mut gaps = Vec::new();
    for i in 0..10_u64 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        proxy.reset_all();
        writes
            .insert_one(doc! {"_id": i64::try_from(i).unwrap()})
            .await
            .unwrap();
        counter.wait_for(i + 1).await;
        gaps.push(started.elapsed());
    }
    let resumes = consumer.stats().resumes();
    consumer.shutdown().await.unwrap();
    gaps.sort();
    println!(
        "connection reset to the next delivered event (10 resets): p50 {:?} · max {:?} · over 250 ms {}; consumer resumes {}",
        percentile(&gaps, 0.5),
        gaps[gaps.len() - 1],
        slow(&gaps),
        resumes
    );
}

/// The same resets under the raw driver's `ChangeStream` through a FaultProxy: the baseline of
/// the reset figure. `KEEL_BENCH_TRACE=1` prints the driver's server and command events with
/// their time since the reset.
async fn raw_reset(rs: &server::BenchServer, raw: &mongodb::Client) {
    use mongodb::event::{EventHandler, command::CommandEvent, sdam::SdamEvent};
    let proxy = FaultProxy::start(rs.first_host()).await.unwrap();
    let trace = std::env::var("KEEL_BENCH_TRACE").is_ok();
    let since = Arc::new(std::sync::Mutex::new(Instant::now()));
    let uri = format!("mongodb://{}/?directConnection=true", proxy.addr());
    let mut options = if std::env::var("KEEL_BENCH_KEEL_OPTIONS").is_ok() {
        KeelConfig::for_uri(&uri)
            .unwrap()
            .to_client_options()
            .await
            .unwrap()
    } else {
        mongodb::options::ClientOptions::parse(&uri).await.unwrap()
    };
    if trace {
        let at = Arc::clone(&since);
        options.sdam_event_handler = Some(EventHandler::callback(move |event: SdamEvent| {
            let t = at.lock().unwrap().elapsed();
            match event {
                SdamEvent::ServerDescriptionChanged(e) => println!(
                    "  {t:>10.1?} server {:?} -> {:?}",
                    e.previous_description.server_type(),
                    e.new_description.server_type()
                ),
                SdamEvent::ServerHeartbeatStarted(_) => println!("  {t:>10.1?} heartbeat started"),
                SdamEvent::ServerHeartbeatFailed(_) => println!("  {t:>10.1?} heartbeat failed"),
                SdamEvent::ServerHeartbeatSucceeded(_) => {
                    println!("  {t:>10.1?} heartbeat succeeded");
                }
                _ => {}
            }
        }));
        let at = Arc::clone(&since);
        options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
            let t = at.lock().unwrap().elapsed();
            match event {
                CommandEvent::Started(e) => println!("  {t:>10.1?} {} started", e.command_name),
                CommandEvent::Failed(e) => println!("  {t:>10.1?} {} failed", e.command_name),
                _ => {}
            }
        }));
    }
    let through = mongodb::Client::with_options(options).unwrap();
    let watched = through
        .database("bench")
        .collection::<Document>("raw_reset");
    let mut stream = watched
        .watch()
        .max_await_time(Duration::from_millis(200))
        .await
        .unwrap();
    // Read continuously, as the consumer does, so a getMore is in flight at each reset.
    let (events, mut delivered) = tokio::sync::mpsc::channel(16);
    let reader = tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            if events.send(event).await.is_err() {
                return;
            }
        }
    });
    let writes = raw.database("bench").collection::<Document>("raw_reset");
    let mut gaps = Vec::new();
    for i in 0..10_i64 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if trace {
            println!("  reset {i}");
        }
        let started = Instant::now();
        *since.lock().unwrap() = started;
        proxy.reset_all();
        writes.insert_one(doc! {"_id": i}).await.unwrap();
        delivered.recv().await.unwrap().unwrap();
        if trace {
            println!("  delivered after {:?}", started.elapsed());
        }
        gaps.push(started.elapsed());
    }
    reader.abort();
    gaps.sort();
    println!(
        "raw driver ChangeStream, the same resets (10): p50 {:?} · max {:?} · over 250 ms {}",
        percentile(&gaps, 0.5),
        gaps[gaps.len() - 1],
        slow(&gaps),
    );
}
