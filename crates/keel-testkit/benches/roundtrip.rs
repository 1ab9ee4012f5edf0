//! Round trips per second through the official driver on one client: `find_one` by `_id` and
//! `insert_one`. Keel's own benchmarks use this server, so it must not be their bottleneck:
//! `server_share` first prints the server's own CPU time per request against the driver's
//! client CPU time and the round trip's wall time, with server and client each on its own
//! thread (a current-thread runtime each), so each thread's CPU clock is one side's work.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongodb::options::ClientOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn roundtrip(c: &mut Criterion) {
    // One thread for client and server: on a 2-core machine shared with compilers, cross-thread
    // wake-ups cost more than they parallelise.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, coll) = rt.block_on(async {
        let server = TestServer::start().await.unwrap();
        let mut options = ClientOptions::parse(server.uri()).await.unwrap();
        // One connection: the figure is per-connection latency, not pool parallelism.
        options.max_pool_size = Some(1);
        let client = mongodb::Client::with_options(options).unwrap();
        let coll = client.database("bench").collection::<Document>("c");
        let docs: Vec<Document> = (0..1000)
            .map(|i| doc! {"_id": i, "name": format!("user{i}"), "n": i})
            .collect();
        coll.insert_many(docs).await.unwrap();
        (server, coll)
    });

    let mut group = c.benchmark_group("roundtrip");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("find_one_by_id", |b| {
        let mut i = 0;
        b.to_async(&rt).iter(|| {
            i = (i + 1) % 1000;
            let coll = coll.clone();
            async move { coll.find_one(doc! {"_id": i}).await.unwrap().unwrap() }
        });
    });
    let next_id = AtomicI64::new(1_000_000);
    group.bench_function("insert_one", |b| {
        b.to_async(&rt).iter(|| {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let coll = coll.clone();
            async move {
                coll.insert_one(doc! {"_id": id, "name": "bench", "n": id})
                    .await
                    .unwrap()
            }
        });
    });
    // The server alone, without the driver's per-operation work: a hand-built OP_MSG `find`
    // by `_id` over one raw connection.
    let mut raw = rt.block_on(TcpStream::connect(server.addr())).unwrap();
    group.bench_function("raw_op_msg_find_by_id", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % 1000;
            rt.block_on(raw_find(&mut raw, i));
        });
    });
    group.finish();
    drop(server);
}

async fn raw_find(s: &mut TcpStream, id: i32) {
    let mut body = Vec::new();
    doc! {"find": "c", "filter": {"_id": id}, "limit": 1, "singleBatch": true, "$db": "bench"}
        .to_writer(&mut body)
        .unwrap();
    let len = i32::try_from(21 + body.len()).unwrap();
    let mut msg = Vec::with_capacity(21 + body.len());
    for v in [len, id, 0, 2013, 0] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.push(0);
    msg.extend_from_slice(&body);
    s.write_all(&msg).await.unwrap();
    let mut header = [0u8; 16];
    s.read_exact(&mut header).await.unwrap();
    let reply_len = usize::try_from(i32::from_le_bytes([
        header[0], header[1], header[2], header[3],
    ]))
    .unwrap();
    let mut reply = vec![0u8; reply_len - 16];
    s.read_exact(&mut reply).await.unwrap();
}

/// This thread's CPU time from `/proc/thread-self/schedstat` (first field: nanoseconds on a
/// CPU, the kernel's Documentation/scheduler/sched-stats.rst); `None` off Linux. A file read
/// rather than `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, which would need `unsafe`. The same as
/// mongokeel's `benches/support/cpu.rs`: benches of two crates cannot share a module.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        stat.split_whitespace().next()?.parse().ok()?,
    ))
}

/// A `TestServer` alone on its own thread; `cpu()` asks that thread for its CPU time.
struct ServerThread {
    uri: String,
    probes: tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<Option<Duration>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    fn start() -> Self {
        let (uri_tx, uri_rx) = std::sync::mpsc::channel();
        let (probes, mut probe_rx) = tokio::sync::mpsc::unbounded_channel::<
            tokio::sync::oneshot::Sender<Option<Duration>>,
        >();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = TestServer::start().await.unwrap();
                uri_tx.send(server.uri()).unwrap();
                // Serves (on this thread) until the bench drops the probe sender.
                while let Some(reply) = probe_rx.recv().await {
                    let _ = reply.send(thread_cpu());
                }
                drop(server);
            });
        });
        Self {
            uri: uri_rx.recv().unwrap(),
            probes,
            thread: Some(thread),
        }
    }

    async fn cpu(&self) -> Option<Duration> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.probes.send(tx).unwrap();
        rx.await.unwrap()
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        let (closed, _) = tokio::sync::mpsc::unbounded_channel();
        self.probes = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The median and interquartile range of `values`, as `12.3 [12.1–12.6]`.
fn spread(mut values: Vec<f64>, precision: usize) -> String {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    format!(
        "{:.p$} [{:.p$}–{:.p$}]",
        at(0.5),
        at(0.25),
        at(0.75),
        p = precision
    )
}

/// The server's share of a `find_one` round trip: its CPU time per request against the
/// driver's (the client's) CPU time and the wall time, medians of interleaved-free rounds (one
/// path only). If the server's CPU per request approaches the client's, the testkit, not Keel,
/// would set the pace of Keel's benches (whose client does more work than the raw driver).
fn server_share(_: &mut Criterion) {
    const ROUNDS: usize = 11;
    // Criterion's test mode (`cargo test --benches`) passes no `--bench`: one short round.
    let full = std::env::args().any(|a| a == "--bench");
    let calls: u32 = if full { 2_000 } else { 10 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = ServerThread::start();
    rt.block_on(async {
        let mut options = ClientOptions::parse(&server.uri).await.unwrap();
        options.max_pool_size = Some(1);
        let client = mongodb::Client::with_options(options).unwrap();
        let coll = client.database("bench").collection::<Document>("share");
        let docs: Vec<Document> = (0..100).map(|i| doc! {"_id": i, "v": i}).collect();
        coll.insert_many(docs).await.unwrap();
        let (mut wall, mut client_cpu, mut server_cpu) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..=ROUNDS {
            let (s0, c0, t0) = (server.cpu().await, thread_cpu(), Instant::now());
            for i in 0..calls {
                coll.find_one(doc! {"_id": i % 100}).await.unwrap().unwrap();
            }
            let took = t0.elapsed();
            let (c1, s1) = (thread_cpu(), server.cpu().await);
            // Round 0 warms up.
            if round == 0 {
                continue;
            }
            let per_call = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(calls);
            wall.push(per_call(took));
            if let (Some(c0), Some(c1), Some(s0), Some(s1)) = (c0, c1, s0, s1) {
                client_cpu.push(per_call(c1 - c0));
                server_cpu.push(per_call(s1 - s0));
            }
        }
        println!(
            "server share of a find_one round trip (driver and server each on one thread, \
             {ROUNDS} rounds of {calls} calls, median [interquartile range]):"
        );
        println!("  round trip            {} µs", spread(wall.clone(), 1));
        if client_cpu.is_empty() {
            println!("  CPU per request: n/a (no /proc/thread-self/schedstat here)");
            return;
        }
        let ratio = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a / b).collect();
        println!(
            "  driver (client) CPU   {} µs",
            spread(client_cpu.clone(), 1)
        );
        println!(
            "  server CPU            {} µs",
            spread(server_cpu.clone(), 1)
        );
        println!(
            "  server CPU / client CPU  {}",
            spread(ratio(&server_cpu, &client_cpu), 3)
        );
        println!(
            "  server CPU / round trip  {}",
            spread(ratio(&server_cpu, &wall), 3)
        );
    });
}

criterion_group!(benches, server_share, roundtrip);
criterion_main!(benches);
