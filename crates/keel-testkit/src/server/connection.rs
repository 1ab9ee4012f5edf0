//! One client connection: read framed messages, run commands (through the fail points), write
//! replies. Malformed input gets an error reply, never a panic.

use std::sync::Arc;

use bson::{Bson, Document};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::state::Counters;
use super::{ConnInfo, Shared, lock};
use crate::commands::{self, CommandError, Ctx, codes};
use crate::wire::{self, HEADER_LEN, Header, MAX_MESSAGE_SIZE, Request};

const OP_QUERY: i32 = 2004;

/// Decrements the open-connection gauge however the connection ends (even when aborted).
struct ConnectionGauge<'a>(&'a Shared);

impl Drop for ConnectionGauge<'_> {
    fn drop(&mut self) {
        Counters::add(&self.0.counters.current_connections, -1);
    }
}

/// What to do after a request.
enum Outcome {
    Reply(Document),
    NoReply,
    Close,
}

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one connection until the peer closes it or the server stops it.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, member: usize) {
    // Request/response traffic: Nagle's algorithm would add up to 40 ms per reply.
    let _ = stream.set_nodelay(true);
    Counters::add(&shared.counters.current_connections, 1);
    Counters::add(&shared.counters.total_connections, 1);
    let _gauge = ConnectionGauge(&shared);
    match shared.tls.clone() {
        // Plaintext keeps TcpStream's lock-free halves (the common, benchmarked path).
        None => {
            let (read_half, write_half) = stream.into_split();
            serve_io(&shared, read_half, write_half, member).await;
        }
        Some(acceptor) => {
            // A client that does not speak TLS (plaintext MongoDB, garbage) fails the
            // handshake and is disconnected without a reply, as mongod with requireTLS does.
            let Ok(Ok(tls)) =
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.0.accept(stream)).await
            else {
                return;
            };
            let (read_half, write_half) = tokio::io::split(tls);
            serve_io(&shared, read_half, write_half, member).await;
        }
    }
}

async fn serve_io<R, W>(shared: &Arc<Shared>, read_half: R, mut write_half: W, member: usize)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let shared = Arc::clone(shared);
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut info = ConnInfo {
        id: shared.next_connection_id(),
        app_name: None,
        member,
        auth: Default::default(),
    };
    let mut out = Vec::with_capacity(16 * 1024);
    let mut paused = shared.paused.subscribe();
    loop {
        let mut header_bytes = [0u8; HEADER_LEN];
        if reader.read_exact(&mut header_bytes).await.is_err() {
            return;
        }
        let header = Header::parse(&header_bytes);
        let declared = usize::try_from(header.length).unwrap_or(0);
        let outcome = if declared < HEADER_LEN {
            // The stream cannot be re-framed after a bogus length: answer, then close.
            let e = CommandError::new(
                codes::PROTOCOL_ERROR,
                format!("invalid message length {}", header.length),
            );
            write_reply(&mut write_half, &mut out, header, &e.to_reply()).await;
            return;
        } else if declared > MAX_MESSAGE_SIZE {
            let e = CommandError::new(
                codes::BSON_OBJECT_TOO_LARGE,
                format!(
                    "message length {declared} is larger than maxMessageSizeBytes {MAX_MESSAGE_SIZE}"
                ),
            );
            write_reply(&mut write_half, &mut out, header, &e.to_reply()).await;
            // Skip the oversized body as it arrives, without buffering it, to stay in frame.
            let mut rest = (&mut reader).take((declared - HEADER_LEN) as u64);
            if tokio::io::copy(&mut rest, &mut tokio::io::sink())
                .await
                .is_err()
            {
                return;
            }
            continue;
        } else {
            let mut body = vec![0u8; declared - HEADER_LEN];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            if paused.borrow().holds(member) && paused.wait_for(|p| !p.holds(member)).await.is_err()
            {
                return;
            }
            handle(&shared, &mut info, header, &body).await
        };
        match outcome {
            Outcome::Reply(doc) => {
                // A reply computed while the server froze (an awaitable hello) stays held too.
                if paused.borrow().holds(member)
                    && paused.wait_for(|p| !p.holds(member)).await.is_err()
                {
                    return;
                }
                if !write_reply(&mut write_half, &mut out, header, &doc).await {
                    return;
                }
            }
            Outcome::NoReply => {}
            Outcome::Close => return,
        }
    }
}

async fn write_reply<W: AsyncWrite + Unpin>(
    w: &mut W,
    out: &mut Vec<u8>,
    request: Header,
    doc: &Document,
) -> bool {
    out.clear();
    // Reply ids only need to be distinct from the client's; echoing the request id is simplest.
    if request.op_code == OP_QUERY {
        wire::encode_op_reply(out, request.request_id, request.request_id, doc);
    } else {
        wire::encode_op_msg(out, request.request_id, request.request_id, doc);
    }
    // TLS buffers records until flushed; for TCP the flush is a no-op.
    w.write_all(out).await.is_ok() && w.flush().await.is_ok()
}

async fn handle(shared: &Shared, info: &mut ConnInfo, header: Header, body: &[u8]) -> Outcome {
    let request = match wire::parse_request(header, body) {
        Ok(r) => r,
        Err(e) => return Outcome::Reply(CommandError::new(codes::PROTOCOL_ERROR, e.0).to_reply()),
    };
    match request {
        Request::Query {
            full_collection_name,
            query,
        } => {
            let query = match query.get("$query").or_else(|| query.get("query")) {
                Some(Bson::Document(inner)) => inner.clone(),
                _ => query,
            };
            let name = query.keys().next().cloned().unwrap_or_default();
            let db = full_collection_name.strip_suffix(".$cmd");
            match db {
                Some(db) if matches!(name.as_str(), "hello" | "isMaster" | "ismaster") => {
                    run_command(shared, info, db, &name, &query).await
                }
                _ => Outcome::Reply(
                    CommandError::new(
                        codes::UNSUPPORTED_OP_QUERY_COMMAND,
                        format!(
                            "Unsupported OP_QUERY command: {name}. The client driver may require an \
                             upgrade. For more details see \
                             https://dochub.mongodb.org/core/legacy-opcode-removal"
                        ),
                    )
                    .to_reply(),
                ),
            }
        }
        Request::Msg { body, more_to_come } => {
            let Some(Bson::String(db)) = body.get("$db") else {
                return Outcome::Reply(
                    CommandError::new(codes::MISSING_DB, "OP_MSG requests require a $db argument")
                        .to_reply(),
                );
            };
            let db = db.clone();
            let name = body.keys().next().cloned().unwrap_or_default();
            match run_command(shared, info, &db, &name, &body).await {
                // mongod hangs up on an unacknowledged write sent to a non-primary: the client
                // could not learn otherwise that its writes are being dropped.
                Outcome::Reply(reply)
                    if more_to_come && reply.get_i32("code") == Ok(codes::NOT_WRITABLE_PRIMARY) =>
                {
                    Outcome::Close
                }
                Outcome::Reply(_) if more_to_come => Outcome::NoReply,
                other => other,
            }
        }
    }
}

fn app_name_of(cmd: &Document) -> Option<String> {
    cmd.get_document("client")
        .ok()?
        .get_document("application")
        .ok()?
        .get_str("name")
        .ok()
        .map(str::to_owned)
}

async fn run_command(
    shared: &Shared,
    info: &mut ConnInfo,
    db: &str,
    name: &str,
    body: &Document,
) -> Outcome {
    let is_hello = matches!(name, "hello" | "isMaster" | "ismaster");
    if is_hello && info.app_name.is_none() {
        info.app_name = app_name_of(body);
    }
    if is_hello {
        await_topology_change(shared, info.member, body).await;
    }
    let action = lock(&shared.fail_points).evaluate(
        name,
        info.app_name.as_deref(),
        body.contains_key("txnNumber") && !body.contains_key("autocommit"),
    );
    let mut write_concern_error = None;
    if let Some(action) = action {
        if let Some(block) = action.block {
            tokio::time::sleep(block).await;
        }
        if action.close {
            return Outcome::Close;
        }
        if let Some(mut error) = action.error {
            super::transactions::label_injected(name, body, &mut error);
            // Through `finish`, as every reply: mongod adds `$clusterTime` and, for
            // NotPrimary-class codes, `topologyVersion` to fail point errors too.
            return Outcome::Reply(finish(shared, info.member, Err(error)));
        }
        write_concern_error = action.write_concern_error;
    }
    if let Some(users) = &shared.users {
        match name {
            "saslStart" => {
                let reply = crate::auth::sasl_start(users, &mut info.auth, db, body);
                return Outcome::Reply(finish(shared, info.member, reply));
            }
            "saslContinue" => {
                let reply = crate::auth::sasl_continue(&mut info.auth, body);
                return Outcome::Reply(finish(shared, info.member, reply));
            }
            _ if !info.auth.is_authenticated() && !crate::auth::allowed_unauthenticated(name) => {
                return Outcome::Reply(finish(
                    shared,
                    info.member,
                    Err(crate::auth::unauthorized(name)),
                ));
            }
            _ => {}
        }
    } else if matches!(name, "saslStart" | "saslContinue") {
        // mongod without access control has no user to match either: the credentials fail.
        return Outcome::Reply(finish(shared, info.member, Err(crate::auth::failed())));
    }
    if !matches!(name, "find" | "getMore" | "insert" | "update" | "delete")
        && commands::is_known(name)
    {
        Counters::add(&shared.counters.command, 1);
    }
    // A lagging secondary reads the data it has applied so far.
    let on_primary = shared
        .replica_set
        .as_ref()
        .is_none_or(|rs| rs.is_primary(info.member));
    let view = match &shared.replication {
        Some(r) if !on_primary && commands::repl::is_read(name) => {
            // A causally consistent read waits until the member has applied that time.
            if let Some(after) = after_cluster_time(body)
                && let Some(at) = r.caught_up_at(info.member, after)
            {
                tokio::time::sleep_until(at).await;
            }
            r.view(info.member)
        }
        _ => None,
    };
    // A statement of a multi-document transaction runs on the transaction's copy of the data.
    let txn_route = super::transactions::route(shared, info.member, db, name, body);
    let ctx = Ctx {
        shared,
        db,
        conn: info,
        read_view: view.as_ref(),
        txn: txn_route.storage(),
    };
    let allowed = match &shared.replica_set {
        Some(rs) => commands::repl::check_member_state(rs, info.member, name, body),
        None => Ok(()),
    };
    // mongod's failGetMoreAfterCursorCheckout fires once the getMore's cursor is found.
    let allowed = allowed.and_then(|()| match name {
        "getMore" => commands::change_stream::checkout_fail_point(&ctx, body).map_or(Ok(()), Err),
        _ => Ok(()),
    });
    // A retried write that already ran answers its first reply (mongod's session catalog).
    let retry_key = shared
        .replica_set
        .as_ref()
        .and_then(|_| super::retryable::key(name, body));
    let mut replayed = None;
    let allowed = allowed.and_then(|()| {
        if let Some((session, txn)) = &retry_key
            && let super::retryable::Seen::Done(reply) =
                lock(&shared.retryable).check(session, *txn)?
        {
            replayed = Some(reply);
        }
        Ok(())
    });
    let is_replay = replayed.is_some();
    let result = match (allowed, &txn_route) {
        (Err(e), _) => Err(e),
        (Ok(()), super::transactions::Route::Reply(reply)) => reply.clone(),
        (Ok(()), _) if is_replay => Ok(replayed.take().unwrap_or_default()),
        // A change stream's getMore may wait for new events: the one asynchronous command.
        (Ok(()), _)
            if name == "getMore" && commands::change_stream::is_stream_get_more(&ctx, body) =>
        {
            commands::change_stream::get_more(&ctx, body).await
        }
        (Ok(()), _) => commands::run(&ctx, name, body),
    };
    let result = super::transactions::after(shared, name, body, &txn_route, result);
    if let (Some((session, txn)), Ok(reply)) = (retry_key, &result)
        && !is_replay
    {
        lock(&shared.retryable).record(session, txn, reply);
    }
    // A write that ran waits for its write concern (replication lag, silent members).
    if result.is_ok() && on_primary && commands::repl::is_write(name) {
        let replication_error = await_replication(shared, info.member, body).await;
        if write_concern_error.is_none() {
            write_concern_error = replication_error.map(|wce| (wce, Vec::new()));
        }
    }
    let mut reply = finish(shared, info.member, result);
    if is_hello && let Some(users) = &shared.users {
        crate::auth::annotate_hello(users, &mut info.auth, body, &mut reply);
    }
    if let Some((wce, labels)) = write_concern_error {
        reply.insert("writeConcernError", wce);
        if !labels.is_empty() {
            reply.insert("errorLabels", labels);
        }
        if let Some(rs) = &shared.replica_set {
            commands::repl::attach_topology_version(rs, info.member, &mut reply);
        }
    }
    Outcome::Reply(reply)
}

/// `readConcern.afterClusterTime`, which drivers send in causally consistent sessions.
fn after_cluster_time(body: &Document) -> Option<bson::Timestamp> {
    match body
        .get_document("readConcern")
        .ok()?
        .get("afterClusterTime")?
    {
        Bson::Timestamp(ts) => Some(*ts),
        _ => None,
    }
}

/// After a write on `primary`: lagging members get the new data later, and the command's
/// `writeConcern` waits for enough members (`None` when it is satisfied or not asked for).
async fn await_replication(shared: &Shared, primary: usize, body: &Document) -> Option<Document> {
    let rs = shared.replica_set.as_ref()?;
    if let Some(r) = &shared.replication {
        let storage = lock(&shared.storage);
        r.record_write(&storage, shared.clock.now());
    }
    let write_concern = body.get_document("writeConcern").ok()?;
    let lags: Vec<Option<std::time::Duration>> = (0..rs.hosts.len())
        .filter(|&m| m != primary)
        .map(|m| {
            rs.is_answering(m).then(|| {
                shared
                    .replication
                    .as_ref()
                    .map_or(std::time::Duration::ZERO, |r| r.lag(m))
            })
        })
        .collect();
    super::replication::await_write_concern(write_concern, &lags).await
}

/// The reply document, with the cluster time a replica set adds to every reply and the
/// member's `topologyVersion` on a NotPrimary-class error, whatever produced it.
fn finish(shared: &Shared, member: usize, result: Result<Document, CommandError>) -> Document {
    let mut reply = result.unwrap_or_else(|e| e.to_reply());
    if let Some(rs) = &shared.replica_set {
        attach_cluster_time(shared, &mut reply);
        commands::repl::attach_topology_version(rs, member, &mut reply);
    }
    reply
}

/// An awaitable `hello` (`topologyVersion` + `maxAwaitTimeMS`, the SDAM streaming protocol)
/// whose `topologyVersion` is current waits until the member's role changes or the time is up.
async fn await_topology_change(shared: &Shared, member: usize, body: &Document) {
    let Some(rs) = &shared.replica_set else {
        return;
    };
    let (Ok(tv), Some(max_await)) = (
        body.get_document("topologyVersion"),
        body.get("maxAwaitTimeMS").and_then(|v| match v {
            Bson::Int32(n) => u64::try_from(*n).ok(),
            Bson::Int64(n) => u64::try_from(*n).ok(),
            Bson::Double(d) if *d >= 0.0 => Some(*d as u64),
            _ => None,
        }),
    ) else {
        return;
    };
    // Subscribe before comparing, so a change between the two is not missed.
    let mut changes = rs.subscribe();
    if rs.is_current(member, tv) {
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(max_await),
            changes.changed(),
        )
        .await;
    }
}

/// Replica-set replies carry the cluster time (drivers gossip it back) and the operation time.
fn attach_cluster_time(shared: &Shared, reply: &mut Document) {
    let now = shared.clock.now();
    reply.insert(
        "$clusterTime",
        bson::doc! {
            "clusterTime": now,
            // Unsigned: with no keyfile there are no signing keys; drivers echo it unchanged.
            "signature": {
                "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] },
                "keyId": 0i64,
            },
        },
    );
    reply.insert("operationTime", now);
}
