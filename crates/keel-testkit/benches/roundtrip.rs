//! Round trips per second through the official driver on one client: `find_one` by `_id` and
//! `insert_one`. Keel's own benchmarks use this server, so it must not be their bottleneck.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

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

criterion_group!(benches, roundtrip);
criterion_main!(benches);
