//! Replica-set commands (`replSetStepDown`, `replSetGetStatus`, `replSetGetConfig`) and the member-state check
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
        | "dropDatabase" | "createIndexes" | "dropIndexes" | "deleteIndexes" | "collMod"
        | "renameCollection" | "commitTransaction" | "abortTransaction" => Access::Write,
        "find" | "count" | "aggregate" | "distinct" | "listCollections" | "listIndexes"
        | "listDatabases" => Access::Read,
        _ => Access::Any,
    }
}

/// Whether `command` writes (runs on the primary only).
pub(crate) fn is_write(command: &str) -> bool {
    access(command) == Access::Write
}

/// Whether `command` reads data a secondary may serve.
pub(crate) fn is_read(command: &str) -> bool {
    access(command) == Access::Read
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
    let e = match access(command) {
        Access::Any => return Ok(()),
        Access::Read if secondary_ok(body) => return Ok(()),
        Access::Read => CommandError::new(
            codes::NOT_PRIMARY_NO_SECONDARY_OK,
            "not primary and secondaryOk=false",
        ),
        Access::Write => {
            let mut e = CommandError::new(codes::NOT_WRITABLE_PRIMARY, "not primary");
            // mongod labels a retryable write's state-change error so drivers retry it (a
            // transaction's commands, with `autocommit`, are labelled in server/transactions.rs).
            if body.contains_key("txnNumber") && !body.contains_key("autocommit") {
                e.labels.push("RetryableWriteError".into());
            }
            e
        }
    };
    // The reply gets the member's topologyVersion on its way out (`attach_topology_version`).
    Err(e)
}

/// mongod's `ErrorCodes::isNotPrimaryError` category: NotWritablePrimary (10107),
/// NotPrimaryNoSecondaryOk (13435), NotPrimaryOrSecondary (13436),
/// InterruptedDueToReplStateChange (11602) and PrimarySteppedDown (189). Shutdown errors
/// (91, 11600) are not in it: mongod adds `topologyVersion` to those only in quiesce mode,
/// which the testkit does not model.
pub(crate) fn is_not_primary_error(code: i32) -> bool {
    matches!(
        code,
        codes::NOT_WRITABLE_PRIMARY
            | codes::NOT_PRIMARY_NO_SECONDARY_OK
            | codes::NOT_PRIMARY_OR_SECONDARY
            | codes::INTERRUPTED_DUE_TO_REPL_STATE_CHANGE
            | codes::PRIMARY_STEPPED_DOWN
    )
}

/// Adds `member`'s current `topologyVersion` to a reply whose error (`code`) or
/// `writeConcernError.code` is a NotPrimary-class error, as mongod does on every path — member
/// state checks and fail points alike (jstests/replsets/notprimary_errors_return_topology_version.js).
/// Drivers compare it with the `topologyVersion` they know (SDAM specification, "Error
/// handling"): one that is not newer is stale, so the driver keeps the server and retries on
/// it at once; a real role change has bumped the counter, so its errors are newer.
pub(crate) fn attach_topology_version(rs: &ReplicaSet, member: usize, reply: &mut Document) {
    let code = reply.get_i32("code").ok();
    let wce_code = reply
        .get_document("writeConcernError")
        .ok()
        .and_then(|w| w.get_i32("code").ok());
    let state_change = code.into_iter().chain(wce_code).any(is_not_primary_error);
    if state_change && !reply.contains_key("topologyVersion") {
        reply.insert("topologyVersion", rs.topology_version(member));
    }
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

pub(super) fn repl_set_get_config(ctx: &Ctx<'_>, _: &Document) -> Result<Document, CommandError> {
    if ctx.db != "admin" {
        return Err(CommandError::new(
            codes::UNAUTHORIZED,
            "replSetGetConfig may only be run against the admin database.",
        ));
    }
    let rs = replica_set(ctx)?;
    Ok(doc! {"config": rs.config(), "ok": 1.0})
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
        let mut reply = e.to_reply();
        attach_topology_version(&rs, 1, &mut reply);
        assert_eq!(
            reply.get_document("topologyVersion").unwrap(),
            &rs.topology_version(1)
        );
        let e = check_member_state(&rs, 1, "insert", &plain).unwrap_err();
        assert!(e.labels.is_empty(), "only retryable writes are labelled");
    }

    #[test]
    fn only_not_primary_errors_get_a_topology_version() {
        let rs = ReplicaSet::new("rs".into(), vec!["a:1".into()]);
        for code in [10107, 11602, 13435, 13436, 189] {
            let mut reply = doc! {"ok": 0.0, "code": code};
            attach_topology_version(&rs, 0, &mut reply);
            assert!(reply.contains_key("topologyVersion"), "{code}");
            let mut wce = doc! {"ok": 1.0, "writeConcernError": {"code": code}};
            attach_topology_version(&rs, 0, &mut wce);
            assert!(
                wce.contains_key("topologyVersion"),
                "{code} as writeConcernError"
            );
        }
        for code in [91, 11600, 1, 6] {
            let mut reply = doc! {"ok": 0.0, "code": code};
            attach_topology_version(&rs, 0, &mut reply);
            assert!(!reply.contains_key("topologyVersion"), "{code}");
        }
    }
}
