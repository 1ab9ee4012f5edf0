//! The wire protocol over a raw TCP stream: malformed and oversized messages, unknown opcodes,
//! the legacy OP_QUERY handshake, document sequences and `moreToCome`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn header(len: usize, request_id: i32, op_code: i32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&(len as i32).to_le_bytes());
    h.extend_from_slice(&request_id.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&op_code.to_le_bytes());
    h
}

fn op_msg(
    request_id: i32,
    flags: u32,
    body: &Document,
    sequence: Option<(&str, &[Document])>,
) -> Vec<u8> {
    let mut payload = flags.to_le_bytes().to_vec();
    payload.push(0);
    body.to_writer(&mut payload).unwrap();
    if let Some((id, docs)) = sequence {
        let mut section = Vec::new();
        section.extend_from_slice(id.as_bytes());
        section.push(0);
        for d in docs {
            d.to_writer(&mut section).unwrap();
        }
        payload.push(1);
        payload.extend_from_slice(&((section.len() + 4) as i32).to_le_bytes());
        payload.extend_from_slice(&section);
    }
    let mut msg = header(16 + payload.len(), request_id, 2013);
    msg.extend_from_slice(&payload);
    msg
}

/// Reads one reply: (responseTo, opCode, document).
async fn read_reply(s: &mut TcpStream) -> (i32, i32, Document) {
    let mut h = [0u8; 16];
    support::within(s.read_exact(&mut h)).await.unwrap();
    let len = i32::from_le_bytes(h[0..4].try_into().unwrap()) as usize;
    let response_to = i32::from_le_bytes(h[8..12].try_into().unwrap());
    let op = i32::from_le_bytes(h[12..16].try_into().unwrap());
    let mut body = vec![0u8; len - 16];
    s.read_exact(&mut body).await.unwrap();
    let doc_start = if op == 2013 { 5 } else { 20 };
    (
        response_to,
        op,
        Document::from_reader(&mut &body[doc_start..]).unwrap(),
    )
}

async fn connect() -> (TestServer, TcpStream) {
    let server = TestServer::start().await.unwrap();
    let s = TcpStream::connect(server.addr()).await.unwrap();
    (server, s)
}

async fn ping(s: &mut TcpStream, id: i32) {
    s.write_all(&op_msg(id, 0, &doc! {"ping": 1, "$db": "admin"}, None))
        .await
        .unwrap();
    let (to, _, reply) = read_reply(s).await;
    assert_eq!(to, id);
    assert_eq!(reply.get_f64("ok").unwrap(), 1.0);
}

#[tokio::test]
async fn malformed_op_msg_gets_error_and_connection_survives() {
    let (_server, mut s) = connect().await;
    for (i, payload) in [
        vec![0u8, 0, 0, 0],                                // flags only, no body section
        vec![0, 0, 0, 0, 0, 50, 0, 0, 0, 1],               // body claims 50 bytes
        vec![0, 0, 0, 0, 9],                               // unknown section kind
        vec![4, 0, 0, 0, 0, 5, 0, 0, 0, 0],                // unknown required flag bit
        vec![0, 0, 0, 0, 0, 8, 0, 0, 0, 0x10, b'a', 0, 0], // truncated element
    ]
    .into_iter()
    .enumerate()
    {
        let id = i as i32 + 1;
        let mut msg = header(16 + payload.len(), id, 2013);
        msg.extend_from_slice(&payload);
        s.write_all(&msg).await.unwrap();
        let (to, op, reply) = read_reply(&mut s).await;
        assert_eq!((to, op), (id, 2013));
        assert_eq!(reply.get_f64("ok").unwrap(), 0.0);
        assert_eq!(reply.get_i32("code").unwrap(), 17, "{reply}");
        assert_eq!(reply.get_str("codeName").unwrap(), "ProtocolError");
    }
    ping(&mut s, 100).await;
}

#[tokio::test]
async fn unknown_opcode_and_compressed_get_errors() {
    let (_server, mut s) = connect().await;
    for (id, op) in [(1, 9999), (2, 2012), (3, 2004)] {
        let mut msg = header(20, id, op);
        msg.extend_from_slice(&[0, 0, 0, 0]);
        s.write_all(&msg).await.unwrap();
        let (to, _, reply) = read_reply(&mut s).await;
        assert_eq!(to, id);
        assert_eq!(reply.get_i32("code").unwrap(), 17);
    }
    ping(&mut s, 10).await;
}

#[tokio::test]
async fn oversized_message_is_refused_and_skipped() {
    let (_server, mut s) = connect().await;
    let len = 48_000_001usize;
    s.write_all(&header(len, 1, 2013)).await.unwrap();
    let (to, _, reply) = read_reply(&mut s).await;
    assert_eq!(to, 1);
    assert_eq!(reply.get_i32("code").unwrap(), 10334);
    // The body is skipped as it streams in, and the connection stays in frame.
    let chunk = vec![0u8; 1 << 20];
    let mut left = len - 16;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n]).await.unwrap();
        left -= n;
    }
    ping(&mut s, 2).await;
}

#[tokio::test]
async fn impossible_length_is_answered_then_closed() {
    let (_server, mut s) = connect().await;
    s.write_all(&header(3, 1, 2013)).await.unwrap();
    let (_, _, reply) = read_reply(&mut s).await;
    assert_eq!(reply.get_i32("code").unwrap(), 17);
    let mut rest = Vec::new();
    assert_eq!(support::within(s.read_to_end(&mut rest)).await.unwrap(), 0);
}

#[tokio::test]
async fn missing_db_and_unknown_command() {
    let (_server, mut s) = connect().await;
    s.write_all(&op_msg(1, 0, &doc! {"ping": 1}, None))
        .await
        .unwrap();
    let (_, _, reply) = read_reply(&mut s).await;
    assert_eq!(reply.get_i32("code").unwrap(), 40571);
    s.write_all(&op_msg(2, 0, &doc! {"nope": 1, "$db": "x"}, None))
        .await
        .unwrap();
    let (_, _, reply) = read_reply(&mut s).await;
    assert_eq!(reply.get_i32("code").unwrap(), 59);
    assert_eq!(reply.get_str("errmsg").unwrap(), "no such command: 'nope'");
}

#[tokio::test]
async fn legacy_op_query_handshake_only() {
    let (_server, mut s) = connect().await;
    let query = |id: i32, coll: &str, q: Document| {
        let mut payload = 0i32.to_le_bytes().to_vec();
        payload.extend_from_slice(coll.as_bytes());
        payload.push(0);
        payload.extend_from_slice(&0i32.to_le_bytes());
        payload.extend_from_slice(&(-1i32).to_le_bytes());
        q.to_writer(&mut payload).unwrap();
        let mut msg = header(16 + payload.len(), id, 2004);
        msg.extend_from_slice(&payload);
        msg
    };
    s.write_all(&query(
        1,
        "admin.$cmd",
        doc! {"isMaster": 1, "client": {"application": {"name": "raw"}}},
    ))
    .await
    .unwrap();
    let (to, op, reply) = read_reply(&mut s).await;
    assert_eq!((to, op), (1, 1), "answered with OP_REPLY");
    assert!(reply.get_bool("ismaster").unwrap());
    assert_eq!(reply.get_i32("maxWireVersion").unwrap(), 21);
    s.write_all(&query(2, "admin.$cmd", doc! {"$query": {"hello": 1}}))
        .await
        .unwrap();
    let (_, _, reply) = read_reply(&mut s).await;
    assert!(reply.get_bool("isWritablePrimary").unwrap());
    s.write_all(&query(3, "db.$cmd", doc! {"find": "c"}))
        .await
        .unwrap();
    let (_, op, reply) = read_reply(&mut s).await;
    assert_eq!(op, 1);
    assert_eq!(reply.get_i32("code").unwrap(), 352);
}

#[tokio::test]
async fn document_sequences_and_more_to_come() {
    let (_server, mut s) = connect().await;
    let docs = [doc! {"_id": 1}, doc! {"_id": 2}, doc! {"_id": 3}];
    s.write_all(&op_msg(
        1,
        0,
        &doc! {"insert": "seq", "$db": "raw"},
        Some(("documents", &docs)),
    ))
    .await
    .unwrap();
    let (_, _, reply) = read_reply(&mut s).await;
    assert_eq!(reply.get_i32("n").unwrap(), 3);
    // moreToCome (w:0): executed, never answered; the next reply is for the next request.
    s.write_all(&op_msg(
        2,
        2,
        &doc! {"insert": "seq", "$db": "raw", "documents": [{"_id": 4}]},
        None,
    ))
    .await
    .unwrap();
    s.write_all(&op_msg(3, 0, &doc! {"count": "seq", "$db": "raw"}, None))
        .await
        .unwrap();
    let (to, _, reply) = read_reply(&mut s).await;
    assert_eq!(to, 3);
    assert_eq!(reply.get_i32("n").unwrap(), 4);
    // A field in both the body and a sequence is an error.
    s.write_all(&op_msg(
        4,
        0,
        &doc! {"insert": "seq", "$db": "raw", "documents": []},
        Some(("documents", &docs)),
    ))
    .await
    .unwrap();
    let (_, _, reply) = read_reply(&mut s).await;
    assert_eq!(reply.get_i32("code").unwrap(), 17);
}

#[tokio::test]
async fn many_concurrent_connections() {
    let server = TestServer::start().await.unwrap();
    let mut tasks = Vec::new();
    for c in 0..64 {
        let addr = server.addr();
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            for i in 0..10 {
                ping(&mut s, c * 100 + i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
