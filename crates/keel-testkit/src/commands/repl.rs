//! Replica-set commands (`replSetStepDown`, `replSetGetStatus`) and the member-state check
//! every command passes: writes only on the primary, reads on a secondary only with a
//! non-primary read preference — with mongod's codes, labels and messages.

use bson::{Bson, Document, doc};

use super::{CommandError, Ctx, codes};
use crate::server::{ElectionError, ReplicaSet};

/// What a command needs from the member that runs it (mongod's `secondaryAllowed`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    /// Runs on any member (handshake, diagnostics, cursors already open there).
    Any,
    /// Runs on a secondary only when the client allows it (`$readPreference` not `primary`).
    Read,
    /// Runs on the primary only.
    Write,
}

fn access(command: &str) -> Access {
    match command {
        "insert" | "update" | "delete" | "findAndModify" | "findandmodify" | "create" | "drop"
        | "dropDatabase" | "createIndexes" | "dropIndexes" | "deleteIndexes" | "collMod" => {
            Access::Write
        }
        "find" | "count" | "aggregate" | "distinct" | "listCollections" | "listIndexes"
        | "listDatabases" => Access::Read,
        _ => Access::Any,
    }
}

/// Whether the client let a secondary answer: OP_MSG carries the read preference in
/// `$readPreference`; without it the mode is `primary`.
fn secondary_ok(body: &Document) -> bool {
    body.get_document("$readPreference")
        .ok()
        .and_then(|rp| rp.get_str("mode").ok())
        .is_some_and(|mode| mode != "primary")
}

/// Refuses a command the member cannot run in its current role.
pub(crate) fn check_member_state(
    rs: &ReplicaSet,
    member: usize,
    command: &str,
    body: &Document,
) -> Result<(), CommandError> {
    if rs.is_primary(member) {
        return Ok(());
    }
    let mut e = match access(command) {
        Access::Any => return Ok(()),
        Access::Read if secondary_ok(body) => return Ok(()),
        Access::Read => CommandError::new(
            codes::NOT_PRIMARY_NO_SECONDARY_OK,
            "not primary and secondaryOk=false",
        ),
        Access::Write => {
            let mut e = CommandError::new(codes::NOT_WRITABLE_PRIMARY, "not primary");
            // mongod labels a retryable write's state-change error so drivers retry it.
            if body.contains_key("txnNumber") {
                e.labels.push("RetryableWriteError".into());
            }
            e
        }
    };
    // State-change errors carry the member's topologyVersion (SDAM: drivers use it to
    // ignore stale errors).
    e.extra = Box::new(doc! {"topologyVersion": rs.topology_version(member)});
    Err(e)
}

fn replica_set<'a>(ctx: &Ctx<'a>) -> Result<&'a ReplicaSet, CommandError> {
    ctx.shared.replica_set.as_ref().ok_or_else(|| {
        CommandError::new(codes::NO_REPLICATION_ENABLED, "not running with --replSet")
    })
}

pub(super) fn repl_set_get_status(ctx: &Ctx<'_>, _: &Document) -> Result<Document, CommandError> {
    let rs = replica_set(ctx)?;
    Ok(rs.status(ctx.conn.member, ctx.shared.clock.now()))
}

pub(super) fn repl_set_step_down(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    if ctx.db != "admin" {
        return Err(CommandError::new(
            codes::UNAUTHORIZED,
            "replSetStepDown may only be run against the admin database.",
        ));
    }
    let rs = replica_set(ctx)?;
    // mongod accepts any number of seconds (a non-number means 60); the testkit hands over at
    // once and does not bar the old primary from a later `elect`.
    if let Some(v) = cmd.get("secondaryCatchUpPeriodSecs")
        && !matches!(v, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))
    {
        return Err(CommandError::type_mismatch(
            "replSetStepDown.secondaryCatchUpPeriodSecs",
            "long",
            v,
        ));
    }
    if !rs.is_primary(ctx.conn.member) {
        return Err(CommandError::new(
            codes::NOT_WRITABLE_PRIMARY,
            "not primary so can't step down",
        ));
    }
    match rs.step_down() {
        Ok(_) => Ok(doc! {"ok": 1.0}),
        Err(ElectionError::NobodyToTakeOver) => Err(CommandError::new(
            codes::EXCEEDED_TIME_LIMIT,
            "No electable secondaries caught up as of the stepdown deadline",
        )),
        Err(_) => Err(CommandError::new(
            codes::NOT_WRITABLE_PRIMARY,
            "not primary so can't step down",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondaries_refuse_writes_and_unflagged_reads() {
        let rs = ReplicaSet::new("rs".into(), vec!["a:1".into(), "a:2".into()]);
        let plain = doc! {"find": "c"};
        assert!(check_member_state(&rs, 0, "insert", &plain).is_ok());
        assert!(check_member_state(&rs, 1, "hello", &plain).is_ok());
        let e = check_member_state(&rs, 1, "find", &plain).unwrap_err();
        assert_eq!(e.code, codes::NOT_PRIMARY_NO_SECONDARY_OK);
        let ok = doc! {"find": "c", "$readPreference": {"mode": "secondaryPreferred"}};
        assert!(check_member_state(&rs, 1, "find", &ok).is_ok());
        let e = check_member_state(&rs, 1, "insert", &doc! {"txnNumber": 1i64}).unwrap_err();
        assert_eq!(e.code, codes::NOT_WRITABLE_PRIMARY);
        assert_eq!(e.labels, vec!["RetryableWriteError".to_owned()]);
        assert!(e.extra.contains_key("topologyVersion"));
        let e = check_member_state(&rs, 1, "insert", &plain).unwrap_err();
        assert!(e.labels.is_empty(), "only retryable writes are labelled");
    }
}
