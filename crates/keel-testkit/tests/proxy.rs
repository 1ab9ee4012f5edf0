//! FaultProxy modes, each switched on and off at run time: latency with jitter, bandwidth,
//! reset all, reset after N bytes, black hole, refusing new connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_testkit::{FaultProxy, TestServer};
use mongodb::Client;
use mongodb::bson::{Document, doc};
use support::{fast_options, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Setup {
    _server: TestServer,
    proxy: FaultProxy,
    client: Client,
}

async fn setup() -> Setup {
    let server = TestServer::start().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = Client::with_options(fast_options(&proxy.uri()).await).unwrap();
    Setup {
        _server: server,
        proxy,
        client,
    }
}

async fn ping(client: &Client) -> mongodb::error::Result<Document> {
    client.database("admin").run_command(doc! {"ping": 1}).await
}

/// A raw OP_MSG ping (the server answers ~40 bytes).
fn raw_ping(id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    doc! {"ping": 1, "$db": "admin"}
        .to_writer(&mut body)
        .unwrap();
    let len = 16 + 4 + 1 + body.len();
    let mut msg = Vec::new();
    for v in [len as i32, id, 0, 2013, 0] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.push(0);
    msg.extend_from_slice(&body);
    msg
}

async fn read_reply(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await?;
    let len = i32::from_le_bytes(h) as usize;
    let mut rest = vec![0u8; len - 4];
    s.read_exact(&mut rest).await?;
    Ok(rest)
}

#[tokio::test]
async fn forwards_faithfully_by_default() {
    let s = setup().await;
    let c = s.client.database("d").collection::<Document>("c");
    c.insert_one(doc! {"_id": 1, "payload": "x".repeat(200_000)})
        .await
        .unwrap();
    let got = c.find_one(doc! {"_id": 1}).await.unwrap().unwrap();
    assert_eq!(got.get_str("payload").unwrap().len(), 200_000);
    assert!(s.proxy.connection_count() > 0);
}

#[tokio::test]
async fn latency_delays_replies_and_clears() {
    let s = setup().await;
    ping(&s.client).await.unwrap();
    s.proxy
        .set_latency(Duration::from_secs(3), Duration::from_millis(100));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), ping(&s.client))
            .await
            .is_err()
    );
    s.proxy.set_latency(Duration::ZERO, Duration::ZERO);
    within(ping(&s.client)).await.unwrap();
}

#[tokio::test]
async fn bandwidth_limit_throttles_large_transfers() {
    let s = setup().await;
    let c = s.client.database("d").collection::<Document>("bw");
    c.insert_one(doc! {"_id": 1, "blob": "y".repeat(100_000)})
        .await
        .unwrap();
    s.proxy.set_bandwidth(Some(10_000));
    // 100 kB at 10 kB/s takes ~10 s; small messages still get through.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), c.find_one(doc! {"_id": 1}))
            .await
            .is_err()
    );
    s.proxy.set_bandwidth(None);
    assert!(within(c.find_one(doc! {"_id": 1})).await.unwrap().is_some());
}

#[tokio::test]
async fn reset_all_resets_open_connections_only() {
    let s = setup().await;
    let mut raw = TcpStream::connect(s.proxy.addr()).await.unwrap();
    raw.write_all(&raw_ping(1)).await.unwrap();
    within(read_reply(&mut raw)).await.unwrap();
    s.proxy.reset_all();
    let mut buf = [0u8; 1];
    let err = within(raw.read(&mut buf)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    // New connections work.
    let mut fresh = TcpStream::connect(s.proxy.addr()).await.unwrap();
    fresh.write_all(&raw_ping(2)).await.unwrap();
    within(read_reply(&mut fresh)).await.unwrap();
}

#[tokio::test]
async fn reset_after_bytes_cuts_a_connection_mid_stream() {
    let s = setup().await;
    let ping_len = raw_ping(1).len() as u64;
    let budget = ping_len + 10;
    s.proxy.reset_after_bytes(Some(budget));
    let mut raw = TcpStream::connect(s.proxy.addr()).await.unwrap();
    raw.write_all(&raw_ping(1)).await.unwrap();
    // The request fits the budget; the reply would exceed it: it is cut and the connection reset.
    let result = within(read_reply(&mut raw)).await;
    assert!(result.is_err(), "reply must not arrive whole");
    s.proxy.reset_after_bytes(None);
    let mut fresh = TcpStream::connect(s.proxy.addr()).await.unwrap();
    for i in 0..5 {
        fresh.write_all(&raw_ping(i)).await.unwrap();
        within(read_reply(&mut fresh)).await.unwrap();
    }
}

#[tokio::test]
async fn black_hole_swallows_traffic_until_cleared() {
    let s = setup().await;
    ping(&s.client).await.unwrap();
    s.proxy.black_hole(true);
    let mut raw = TcpStream::connect(s.proxy.addr()).await.unwrap();
    raw.write_all(&raw_ping(1)).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), read_reply(&mut raw))
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), ping(&s.client))
            .await
            .is_err()
    );
    s.proxy.black_hole(false);
    raw.write_all(&raw_ping(2)).await.unwrap();
    within(read_reply(&mut raw)).await.unwrap();
    within(ping(&s.client)).await.unwrap();
}

#[tokio::test]
async fn refuse_new_closes_the_port_and_reopens_it() {
    let s = setup().await;
    let mut open = TcpStream::connect(s.proxy.addr()).await.unwrap();
    // Make sure the proxy has accepted it (not just the kernel backlog).
    open.write_all(&raw_ping(0)).await.unwrap();
    within(read_reply(&mut open)).await.unwrap();
    s.proxy.refuse_new(true).await.unwrap();
    let err = TcpStream::connect(s.proxy.addr()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // Established connections keep working.
    open.write_all(&raw_ping(1)).await.unwrap();
    within(read_reply(&mut open)).await.unwrap();
    s.proxy.clear().await.unwrap();
    let mut fresh = TcpStream::connect(s.proxy.addr()).await.unwrap();
    fresh.write_all(&raw_ping(2)).await.unwrap();
    within(read_reply(&mut fresh)).await.unwrap();
}

#[tokio::test]
async fn upstream_down_resets_clients() {
    let server = TestServer::start().await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    server.stop().await;
    let mut raw = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    assert!(matches!(within(raw.read(&mut buf)).await, Ok(0) | Err(_)));
}
