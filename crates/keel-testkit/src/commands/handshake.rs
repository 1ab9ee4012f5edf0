//! Connection-level commands: `hello`/`isMaster`, `ping`, `buildInfo`, `serverStatus`,
//! `endSessions`. Replies follow a MongoDB 7.0 standalone mongod.

use bson::{Document, doc};

use super::{CommandError, Ctx};
use crate::server::Counters as c;
use crate::server::lock;

/// MongoDB 7.0's wire version.
pub(crate) const MAX_WIRE_VERSION: i32 = 21;
/// `maxBsonObjectSize`.
pub(crate) const MAX_BSON_OBJECT_SIZE: i32 = 16 * 1024 * 1024;
/// `maxWriteBatchSize`.
pub(crate) const MAX_WRITE_BATCH_SIZE: i32 = 100_000;
/// The version `buildInfo` reports.
pub(crate) const VERSION: &str = "7.0.0";

fn handshake_reply(ctx: &Ctx<'_>, cmd: &Document, primary_field: &str) -> Document {
    let mut reply = Document::new();
    if cmd.get_bool("helloOk").unwrap_or(false) {
        reply.insert("helloOk", true);
    }
    match &ctx.shared.replica_set {
        // Replica-set members report their role and a topologyVersion, so drivers use the
        // streaming protocol (the connection awaits changes before this handler runs).
        Some(rs) => {
            let fields = rs.hello_fields(ctx.conn.member, primary_field, ctx.shared.clock.now());
            reply.extend(fields);
        }
        // A standalone reports no topologyVersion: drivers poll, as with MongoDB < 4.4.
        None => {
            reply.insert(primary_field, true);
        }
    }
    reply.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE);
    reply.insert(
        "maxMessageSizeBytes",
        i32::try_from(crate::wire::MAX_MESSAGE_SIZE).unwrap_or(i32::MAX),
    );
    reply.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
    reply.insert("localTime", bson::DateTime::now());
    reply.insert("logicalSessionTimeoutMinutes", 30);
    reply.insert("connectionId", ctx.conn.id);
    reply.insert("minWireVersion", 0);
    reply.insert("maxWireVersion", MAX_WIRE_VERSION);
    reply.insert("readOnly", false);
    reply.insert("ok", 1.0);
    reply
}

pub(super) fn hello(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    Ok(handshake_reply(ctx, cmd, "isWritablePrimary"))
}

pub(super) fn is_master(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    Ok(handshake_reply(ctx, cmd, "ismaster"))
}

pub(super) fn ping(_: &Ctx<'_>, _: &Document) -> Result<Document, CommandError> {
    Ok(doc! {"ok": 1.0})
}

pub(super) fn connection_status(ctx: &Ctx<'_>, _: &Document) -> Result<Document, CommandError> {
    Ok(crate::auth::connection_status(
        ctx.shared.users.as_ref(),
        &ctx.conn.auth,
    ))
}

/// `endSessions`: ends the listed sessions, aborting their open transactions (as mongod).
pub(super) fn end_sessions(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let ids: Vec<Vec<u8>> = cmd
        .get_array("endSessions")
        .map(|a| {
            a.iter()
                .filter_map(|s| match s.as_document()?.get("id")? {
                    bson::Bson::Binary(b) => Some(b.bytes.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    crate::server::lock(&ctx.shared.transactions).end_sessions(&ids);
    Ok(doc! {"ok": 1.0})
}

pub(super) fn build_info(_: &Ctx<'_>, _: &Document) -> Result<Document, CommandError> {
    Ok(doc! {
        "version": VERSION,
        "gitVersion": "keel-testkit",
        "modules": [],
        "allocator": "system",
        "javascriptEngine": "none",
        "sysInfo": "deprecated",
        "versionArray": [7, 0, 0, 0],
        "bits": 64,
        "debug": false,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
        "storageEngines": ["keel-testkit"],
        "ok": 1.0,
    })
}

pub(super) fn server_status(ctx: &Ctx<'_>, _: &Document) -> Result<Document, CommandError> {
    let s = ctx.shared;
    let k = &s.counters;
    let uptime = s.started.elapsed();
    let current = c::get(&k.current_connections);
    let open_cursors = i64::try_from(lock(&s.cursors).len()).unwrap_or(i64::MAX);
    Ok(doc! {
        "host": "keel-testkit",
        "version": VERSION,
        "process": "mongod",
        "pid": i64::from(std::process::id()),
        "uptime": uptime.as_secs_f64().floor(),
        "uptimeMillis": i64::try_from(uptime.as_millis()).unwrap_or(i64::MAX),
        "uptimeEstimate": i64::try_from(uptime.as_secs()).unwrap_or(i64::MAX),
        "localTime": bson::DateTime::now(),
        "connections": {
            "current": i32::try_from(current).unwrap_or(i32::MAX),
            "available": 1_000_000 - i32::try_from(current).unwrap_or(0),
            "totalCreated": c::get(&k.total_connections),
            "active": i32::try_from(current).unwrap_or(i32::MAX),
        },
        "opcounters": {
            "insert": c::get(&k.insert),
            "query": c::get(&k.query),
            "update": c::get(&k.update),
            "delete": c::get(&k.delete),
            "getmore": c::get(&k.getmore),
            "command": c::get(&k.command),
        },
        "metrics": {"cursor": {"open": {"total": open_cursors}}},
        "ok": 1.0,
    })
}
