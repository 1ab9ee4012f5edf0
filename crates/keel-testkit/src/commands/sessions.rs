//! `killSessions` and `killAllSessions`: the listed sessions' (or every session's) open
//! transactions are aborted, as on mongod (MongoDB manual, `reference/command/killSessions`:
//! `{ killSessions: [ { id: <UUID> }, ... ] }`, an empty array for every session; mongod's
//! jstests/core/txns/kill_sessions_kills_transaction.js). The sessions themselves stay usable
//! ("future operations may use the killed session"), so a later transaction number still
//! starts a transaction on them.

use bson::{Bson, Document, doc};

use super::{CommandError, Ctx};

/// `killSessions`: aborts the listed sessions' open transactions (every session's for `[]`).
pub(super) fn kill_sessions(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let ids: Vec<Vec<u8>> = cmd
        .get_array("killSessions")
        .map(|a| {
            a.iter()
                .filter_map(|s| match s.as_document()?.get("id")? {
                    Bson::Binary(b) => Some(b.bytes.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut transactions = crate::server::lock(&ctx.shared.transactions);
    if ids.is_empty() {
        transactions.kill_all_sessions();
    } else {
        transactions.kill_sessions(&ids);
    }
    Ok(doc! {"ok": 1.0})
}

/// `killAllSessions`: aborts every open transaction (the testkit has one user, so the user
/// patterns mongod takes select them all).
pub(super) fn kill_all_sessions(ctx: &Ctx<'_>, _: &Document) -> Result<Document, CommandError> {
    crate::server::lock(&ctx.shared.transactions).kill_all_sessions();
    Ok(doc! {"ok": 1.0})
}
