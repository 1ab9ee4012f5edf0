//! Multi-document transactions on replica sets, as drivers run them (MongoDB transactions
//! specification, mongodb/specifications `source/transactions/transactions.md`): the first
//! command carries `lsid`, `txnNumber`, `startTransaction: true` and `autocommit: false`, the
//! later ones `autocommit: false` with the same `txnNumber`, and `commitTransaction` /
//! `abortTransaction` on `admin` end it.
//!
//! The model: a transaction works on its own copy of the data, taken at its first command (its
//! snapshot), so it reads its own writes and nobody else sees them. Its copy records what it
//! changed in a private oplog; the commit replays those changes on the shared storage under
//! one storage lock (atomically for every reader), each into the shared oplog tagged with the
//! transaction's `lsid` and `txnNumber`. A transaction writing a document someone else changed
//! since its snapshot, or one another open transaction wrote, gets `WriteConflict` (first
//! writer wins, as mongod's WiredTiger does). A role change of the member (step-down,
//! election, restart) aborts it, as mongod aborts unprepared transactions on step-down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use bson::{Bson, Document, Timestamp, doc};

use super::{ReplicaSet, Shared, lock};
use crate::commands::{CommandError, codes};
use crate::storage::{ClusterClock, Collection, OpKind, OplogEntry, Storage};

/// error_codes.yml: WriteConflict.
const WRITE_CONFLICT: i32 = 112;
/// error_codes.yml: NoSuchTransaction.
const NO_SUCH_TRANSACTION: i32 = 251;
/// error_codes.yml: TransactionCommitted.
const TRANSACTION_COMMITTED: i32 = 256;
/// error_codes.yml: TransactionTooOld.
const TRANSACTION_TOO_OLD: i32 = 225;
/// error_codes.yml: OperationNotSupportedInTransaction.
const NOT_SUPPORTED_IN_TRANSACTION: i32 = 263;

/// The label drivers retry a whole transaction on (error_labels.cpp).
const TRANSIENT: &str = "TransientTransactionError";

/// Commands a transaction may run (mongod 7.0's list, less those the testkit does not
/// implement; jstests/core/txns/commands_not_allowed_in_txn.js has the refused ones).
const ALLOWED: &[&str] = &[
    "find",
    "getMore",
    "killCursors",
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "aggregate",
    "distinct",
];

/// mongod's `ErrorCodes::isRetriableError` (error_codes.yml, category RetriableError).
const RETRIABLE: &[i32] = &[
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
];

/// What the connection does with a command, as far as transactions go.
#[derive(Debug)]
pub(crate) enum Route {
    /// Not part of a transaction: runs on the shared storage.
    Plain,
    /// Runs in this open transaction, on its copy of the data.
    Run(Arc<Mutex<Storage>>),
    /// Answered here (commit, abort, or a refusal).
    Reply(Result<Document, CommandError>),
}

impl Route {
    /// The transaction's data, when the command runs in one.
    pub(crate) fn storage(&self) -> Option<&Mutex<Storage>> {
        match self {
            Self::Run(storage) => Some(storage),
            _ => None,
        }
    }
}

/// One document a transaction wrote, as it was in the transaction's snapshot.
#[derive(Debug, Clone)]
struct Written {
    db: String,
    coll: String,
    id: Bson,
    /// `None`: the document did not exist (the transaction inserted it).
    base: Option<Document>,
}

/// mongod's `transactionLifetimeLimitSeconds` default.
pub(crate) const DEFAULT_LIFETIME_LIMIT: Duration = Duration::from_secs(60);

/// An open transaction.
#[derive(Debug)]
struct Open {
    storage: Arc<Mutex<Storage>>,
    /// When its first statement ran: past the lifetime limit it is aborted.
    started: Instant,
    member: usize,
    /// The member's `topologyVersion` at the start: any role change since aborts.
    topology: Document,
    /// Documents written so far, by `(db, coll, _id)` key.
    writes: HashMap<Vec<u8>, Written>,
}

#[derive(Debug)]
enum State {
    Open(Open),
    Committed,
    Aborted,
}

/// A session's latest transaction.
#[derive(Debug)]
struct Session {
    lsid: Document,
    number: i64,
    state: State,
}

/// Every session's latest transaction.
#[derive(Debug)]
pub(crate) struct Transactions {
    sessions: HashMap<Vec<u8>, Session>,
    /// An open transaction older than this is aborted (mongod's
    /// `transactionLifetimeLimitSeconds`), so a client that died mid-transaction does not hold
    /// its documents against every later writer for ever.
    lifetime_limit: Duration,
}

impl Default for Transactions {
    fn default() -> Self {
        Self::with_lifetime_limit(DEFAULT_LIFETIME_LIMIT)
    }
}

/// The transaction fields of a command.
struct Fields {
    session: Vec<u8>,
    lsid: Document,
    number: i64,
    start: bool,
}

fn fields(body: &Document) -> Result<Fields, CommandError> {
    let invalid = |m: &str| CommandError::new(codes::INVALID_OPTIONS, m.to_owned());
    if body.get_bool("autocommit") != Ok(false) {
        return Err(invalid("Specifying autocommit=true is not allowed."));
    }
    let number = match body.get("txnNumber") {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        _ => return Err(invalid("'autocommit' field requires a transaction number.")),
    };
    let lsid = body
        .get_document("lsid")
        .map_err(|_| invalid("Transaction number requires a session ID (lsid) to be set."))?;
    let session = match lsid.get("id") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        _ => return Err(invalid("lsid.id must be a UUID.")),
    };
    let start = match body.get("startTransaction") {
        None => false,
        Some(Bson::Boolean(true)) => true,
        Some(_) => return Err(invalid("startTransaction must be true.")),
    };
    Ok(Fields {
        session,
        lsid: lsid.clone(),
        number,
        start,
    })
}

/// Decides how `name` runs: outside any transaction, inside one, or answered here (commit,
/// abort, errors). Starting a transaction takes its snapshot.
pub(crate) fn route(
    shared: &Shared,
    member: usize,
    db: &str,
    name: &str,
    body: &Document,
) -> Route {
    let Some(rs) = &shared.replica_set else {
        // jstests/noPassthrough/retryable_writes_standalone_api.js: any txnNumber fails here.
        if body.contains_key("txnNumber") {
            return Route::Reply(Err(CommandError::new(
                codes::ILLEGAL_OPERATION,
                "Transaction numbers are only allowed on a replica set member or mongos",
            )));
        }
        return Route::Plain;
    };
    let ends = matches!(name, "commitTransaction" | "abortTransaction");
    if !body.contains_key("autocommit") {
        if ends {
            return Route::Reply(Err(CommandError::new(
                codes::INVALID_OPTIONS,
                format!("{name} must be run within a transaction"),
            )));
        }
        return Route::Plain;
    }
    let f = match fields(body) {
        Ok(f) => f,
        Err(e) => return Route::Reply(Err(e)),
    };
    if ends && db != "admin" {
        return Route::Reply(Err(CommandError::new(
            codes::UNAUTHORIZED,
            format!("{name} may only be run against the admin database."),
        )));
    }
    if !rs.is_primary(member) {
        // TransactionParticipant::beginOrContinue on a secondary.
        return Route::Reply(Err(CommandError::new(
            codes::NOT_WRITABLE_PRIMARY,
            "Not primary so we cannot begin or continue a transaction",
        )));
    }
    lock(&shared.transactions).route(shared, rs, member, name, body, f)
}

impl Transactions {
    pub(crate) fn with_lifetime_limit(lifetime_limit: Duration) -> Self {
        Self {
            sessions: HashMap::new(),
            lifetime_limit,
        }
    }

    /// Aborts the open transactions older than the lifetime limit (mongod's periodic
    /// `abortExpiredTransactions` job; here whenever a transaction command looks).
    fn expire(&mut self) {
        let limit = self.lifetime_limit;
        for session in self.sessions.values_mut() {
            if let State::Open(open) = &session.state
                && open.started.elapsed() > limit
            {
                session.state = State::Aborted;
            }
        }
    }

    /// `endSessions`: the sessions are gone, and with them their open transactions.
    pub(crate) fn end_sessions(&mut self, ids: &[Vec<u8>]) {
        for id in ids {
            self.sessions.remove(id);
        }
    }

    /// `killSessions`: the sessions' open transactions are aborted; the sessions stay (a later
    /// transaction number starts a new transaction, a stale one is refused).
    pub(crate) fn kill_sessions(&mut self, ids: &[Vec<u8>]) {
        for id in ids {
            if let Some(session) = self.sessions.get_mut(id)
                && matches!(session.state, State::Open(_))
            {
                session.state = State::Aborted;
            }
        }
    }

    /// `killAllSessions` (and `killSessions: []`): every open transaction is aborted.
    pub(crate) fn kill_all_sessions(&mut self) {
        for session in self.sessions.values_mut() {
            if matches!(session.state, State::Open(_)) {
                session.state = State::Aborted;
            }
        }
    }

    fn route(
        &mut self,
        shared: &Shared,
        rs: &ReplicaSet,
        member: usize,
        name: &str,
        body: &Document,
        f: Fields,
    ) -> Route {
        self.expire();
        let current = self.sessions.get(&f.session).map(|s| s.number);
        if f.start {
            if let Some(newer) = current.filter(|&n| n >= f.number) {
                return Route::Reply(Err(CommandError::new(
                    TRANSACTION_TOO_OLD,
                    format!(
                        "Cannot start transaction {} on session because a newer transaction \
                         {newer} has already started",
                        f.number
                    ),
                )));
            }
            // The snapshot: the data as every committed write left it.
            let mut snapshot = Storage::with_databases(lock(&shared.storage).databases.clone());
            snapshot.enable_oplog(usize::MAX, Arc::new(ClusterClock::default()));
            let open = Open {
                storage: Arc::new(Mutex::new(snapshot)),
                started: Instant::now(),
                member,
                topology: rs.topology_version(member),
                writes: HashMap::new(),
            };
            self.sessions.insert(
                f.session.clone(),
                Session {
                    lsid: f.lsid.clone(),
                    number: f.number,
                    state: State::Open(open),
                },
            );
        }
        let Some(session) = self.sessions.get_mut(&f.session) else {
            return no_such(format!(
                "Given transaction number {} does not match any in-progress transactions.",
                f.number
            ));
        };
        if f.number < session.number {
            return Route::Reply(Err(CommandError::new(
                TRANSACTION_TOO_OLD,
                format!(
                    "Cannot continue transaction {} on session because a newer transaction {} \
                     has already started",
                    f.number, session.number
                ),
            )));
        }
        if f.number > session.number {
            return no_such(format!(
                "Given transaction number {} does not match any in-progress transactions. The \
                 active transaction number is {}",
                f.number, session.number
            ));
        }
        // A step-down, an election or a restart since the start aborted it.
        if let State::Open(open) = &session.state
            && (open.member != member || !rs.is_current(member, &open.topology))
        {
            session.state = State::Aborted;
        }
        let number = session.number;
        match (&session.state, name) {
            (State::Aborted, _) => no_such(format!("Transaction {number} has been aborted.")),
            // The spec: commitTransaction is retryable, and a retry after success succeeds.
            (State::Committed, "commitTransaction") => Route::Reply(Ok(doc! {"ok": 1.0})),
            (State::Committed, _) => Route::Reply(Err(CommandError::new(
                TRANSACTION_COMMITTED,
                format!("Transaction {number} has been committed."),
            ))),
            (State::Open(_), "abortTransaction") => {
                session.state = State::Aborted;
                Route::Reply(Ok(doc! {"ok": 1.0}))
            }
            (State::Open(open), "commitTransaction") => {
                let tag = doc! {"lsid": lsid_for_events(&session.lsid), "txnNumber": number};
                let result = commit(shared, open, tag);
                session.state = match result {
                    Ok(_) => State::Committed,
                    Err(_) => State::Aborted,
                };
                Route::Reply(result)
            }
            (State::Open(open), _) if allowed(name, body) => Route::Run(Arc::clone(&open.storage)),
            (State::Open(_), _) => {
                session.state = State::Aborted;
                Route::Reply(Err(CommandError::new(
                    NOT_SUPPORTED_IN_TRANSACTION,
                    format!("Cannot run '{name}' in a multi-document transaction."),
                )))
            }
        }
    }
}

fn no_such(message: String) -> Route {
    Route::Reply(Err(CommandError::new(NO_SUCH_TRANSACTION, message)))
}

fn allowed(name: &str, body: &Document) -> bool {
    // A change stream cannot run in a transaction.
    ALLOWED.contains(&name)
        && !(name == "aggregate"
            && body
                .get_array("pipeline")
                .is_ok_and(|p| crate::commands::change_stream::is_change_stream(p)))
}

/// The `lsid` change events carry: the client's `id` and the `uid` mongod derives from the
/// user (SHA-256 of the user name; the empty name without authentication).
fn lsid_for_events(lsid: &Document) -> Document {
    use sha2::Digest;
    let id = lsid.get("id").cloned().unwrap_or(Bson::Null);
    let uid = bson::Binary {
        subtype: bson::spec::BinarySubtype::Generic,
        bytes: sha2::Sha256::digest(b"").to_vec(),
    };
    doc! {"id": id, "uid": uid}
}

/// After a command ran in a transaction (or was refused in one): a failed command aborts the
/// transaction, a write that conflicts is `WriteConflict` and aborts it, and errors get
/// mongod's transaction labels.
pub(crate) fn after(
    shared: &Shared,
    name: &str,
    body: &Document,
    route: &Route,
    result: Result<Document, CommandError>,
) -> Result<Document, CommandError> {
    if shared.replica_set.is_none() || !body.contains_key("autocommit") {
        return result;
    }
    let result = match route {
        Route::Run(_) => check_writes(shared, body, result),
        _ => result,
    };
    result.map_err(|mut e| {
        label(&mut e, name);
        e
    })
}

/// A fail point's error in a transaction: without `errorLabels` in the fail point it gets the
/// labels mongod computes (error_labels.cpp overrides them only when the fail point names some).
pub(crate) fn label_injected(name: &str, body: &Document, e: &mut CommandError) {
    if body.contains_key("autocommit") && e.labels.is_empty() {
        label(e, name);
    }
}

/// error_labels.cpp `isTransientTransactionError` / `isRetryableWriteError` for a command
/// with `txnNumber` and `autocommit`.
fn label(e: &mut CommandError, name: &str) {
    e.labels.retain(|l| l != "RetryableWriteError");
    let ends = matches!(name, "commitTransaction" | "abortTransaction");
    let transient = e.code == WRITE_CONFLICT
        || e.code == NO_SUCH_TRANSACTION
        || (!ends && RETRIABLE.contains(&e.code));
    let label = if transient {
        TRANSIENT
    } else if ends && RETRIABLE.contains(&e.code) {
        "RetryableWriteError"
    } else {
        return;
    };
    if !e.labels.iter().any(|l| l == label) {
        e.labels.push(label.to_owned());
    }
}

fn session_of(body: &Document) -> Option<Vec<u8>> {
    match body.get_document("lsid").ok()?.get("id")? {
        Bson::Binary(b) => Some(b.bytes.clone()),
        _ => None,
    }
}

/// Records what the command wrote and checks it against everyone else's writes.
fn check_writes(
    shared: &Shared,
    body: &Document,
    result: Result<Document, CommandError>,
) -> Result<Document, CommandError> {
    let Some(session) = session_of(body) else {
        return result;
    };
    let mut table = lock(&shared.transactions);
    table.expire();
    let Some(State::Open(open)) = table.sessions.get(&session).map(|s| &s.state) else {
        return result;
    };
    // mongod aborts a transaction whose command failed.
    let failed = match &result {
        Err(_) => true,
        Ok(reply) => reply.contains_key("writeErrors"),
    };
    let writes = written(&lock(&open.storage));
    let conflict = !failed && {
        let storage = lock(&shared.storage);
        writes.iter().any(|(key, w)| {
            !open.writes.contains_key(key) && current(&storage, w) != w.base
                || table.sessions.iter().any(|(other, s)| {
                    *other != session
                        && matches!(&s.state, State::Open(o) if o.writes.contains_key(key))
                })
        })
    };
    let Some(s) = table.sessions.get_mut(&session) else {
        return result;
    };
    if failed || conflict {
        s.state = State::Aborted;
    } else if let State::Open(open) = &mut s.state {
        open.writes = writes;
    }
    if conflict {
        return Err(write_conflict());
    }
    result
}

/// mongod's message for a write conflict inside a transaction.
fn write_conflict() -> CommandError {
    CommandError::new(
        WRITE_CONFLICT,
        "Caused by :: Write conflict during plan execution and yielding is disabled. :: Please \
         retry your operation or multi-document transaction.",
    )
}

/// The changes a transaction's copy recorded, in order (document changes only: a collection
/// the transaction created implicitly is created again by the first replayed write).
fn changes(storage: &Storage) -> Vec<Arc<OplogEntry>> {
    storage.oplog().map_or_else(Vec::new, |oplog| {
        oplog
            .since(Timestamp {
                time: 0,
                increment: 0,
            })
            .filter(|e| {
                matches!(
                    e.kind,
                    OpKind::Insert | OpKind::Update(_) | OpKind::Replace | OpKind::Delete
                )
            })
            .cloned()
            .collect()
    })
}

fn id_of(e: &OplogEntry) -> Bson {
    e.document_key
        .as_ref()
        .and_then(|k| k.get("_id"))
        .cloned()
        .unwrap_or(Bson::Null)
}

/// Every document the transaction wrote, with its state in the snapshot.
fn written(storage: &Storage) -> HashMap<Vec<u8>, Written> {
    let mut out = HashMap::new();
    for e in changes(storage) {
        let coll = e.coll.clone().unwrap_or_default();
        let id = id_of(&e);
        let key =
            bson::to_vec(&doc! {"db": &e.db, "coll": &coll, "id": id.clone()}).unwrap_or_default();
        out.entry(key).or_insert_with(|| Written {
            db: e.db.clone(),
            coll,
            id,
            base: match e.kind {
                OpKind::Insert => None,
                _ => e.pre_image.clone(),
            },
        });
    }
    out
}

/// The committed state of a written document.
fn current(storage: &Storage, w: &Written) -> Option<Document> {
    let c = storage.collection(&w.db, &w.coll)?;
    c.get(c.find_id(&w.id)?).cloned()
}

/// Applies the transaction's changes to the shared storage, all or nothing.
fn commit(shared: &Shared, open: &Open, tag: Document) -> Result<Document, CommandError> {
    let changes = changes(&lock(&open.storage));
    let mut storage = lock(&shared.storage);
    // A write outside any transaction does not wait for open transactions here (mongod's
    // would), so it can land on a document this transaction wrote: that is a conflict too.
    if open.writes.values().any(|w| current(&storage, w) != w.base) {
        return Err(write_conflict());
    }
    // Dry run on copies of the touched collections (unique indexes may still refuse).
    let mut copies: HashMap<(String, String), Collection> = HashMap::new();
    for e in &changes {
        let coll = e.coll.clone().unwrap_or_default();
        let c = copies
            .entry((e.db.clone(), coll.clone()))
            .or_insert_with(|| {
                storage
                    .collection(&e.db, &coll)
                    .cloned()
                    .unwrap_or_else(Collection::new)
            });
        let ok = match (&e.kind, &e.post_image) {
            (OpKind::Insert, Some(doc)) => c.insert(doc.clone()).is_ok(),
            (OpKind::Update(_) | OpKind::Replace, Some(doc)) => c
                .find_id(&id_of(e))
                .is_some_and(|rid| c.replace(rid, doc.clone()).is_ok()),
            (OpKind::Delete, _) => c
                .find_id(&id_of(e))
                .is_some_and(|rid| c.remove(rid).is_some()),
            _ => true,
        };
        if !ok {
            return Err(write_conflict());
        }
    }
    drop(copies);
    if let Some(oplog) = storage.oplog_mut() {
        oplog.set_committing(Some(tag));
    }
    for e in &changes {
        let coll = e.coll.as_deref().unwrap_or_default();
        let rid = storage
            .collection(&e.db, coll)
            .and_then(|c| c.find_id(&id_of(e)));
        // The dry run proved every step applies.
        match (&e.kind, &e.post_image, rid) {
            (OpKind::Insert, Some(doc), _) => {
                let _ = storage.insert(&e.db, coll, doc.clone());
            }
            (OpKind::Update(_) | OpKind::Replace, Some(doc), Some(rid)) => {
                let replacement = e.kind == OpKind::Replace;
                let _ = storage.replace(&e.db, coll, rid, doc.clone(), replacement);
            }
            (OpKind::Delete, _, Some(rid)) => {
                storage.delete(&e.db, coll, rid);
            }
            _ => {}
        }
    }
    if let Some(oplog) = storage.oplog_mut() {
        oplog.set_committing(None);
    }
    Ok(doc! {"ok": 1.0})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(start: bool) -> Document {
        let id = bson::Binary {
            subtype: bson::spec::BinarySubtype::Uuid,
            bytes: vec![7; 16],
        };
        let mut d = doc! {"find": "c", "lsid": {"id": id}, "txnNumber": 1_i64};
        if start {
            d.insert("startTransaction", true);
        }
        d.insert("autocommit", false);
        d
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_transaction_is_aborted_after_the_lifetime_limit() {
        let clock = Arc::new(ClusterClock::default());
        let mut storage = Storage::default();
        storage.enable_oplog(10, Arc::clone(&clock));
        let rs = ReplicaSet::new("rs0".into(), vec!["127.0.0.1:1".into()]);
        let shared = Shared::new(storage, Some(rs), None, None, clock);
        let run = |start| route(&shared, 0, "app", "find", &statement(start));
        assert!(matches!(run(true), Route::Run(_)));
        tokio::time::advance(DEFAULT_LIFETIME_LIMIT - Duration::from_secs(1)).await;
        assert!(matches!(run(false), Route::Run(_)), "still open");
        tokio::time::advance(Duration::from_secs(2)).await;
        match run(false) {
            Route::Reply(Err(e)) => assert_eq!(e.code, NO_SUCH_TRANSACTION),
            other => panic!("expected NoSuchTransaction, got {other:?}"),
        }
    }

    #[test]
    fn labels_follow_mongods_error_labels() {
        let mut e = CommandError::new(WRITE_CONFLICT, "x");
        label(&mut e, "insert");
        assert_eq!(e.labels, [TRANSIENT]);
        let mut e = CommandError::new(codes::NOT_WRITABLE_PRIMARY, "x");
        e.labels.push("RetryableWriteError".into());
        label(&mut e, "find");
        assert_eq!(
            e.labels,
            [TRANSIENT],
            "a transaction's reads are not retried alone"
        );
        let mut e = CommandError::new(codes::NOT_WRITABLE_PRIMARY, "x");
        label(&mut e, "commitTransaction");
        assert_eq!(
            e.labels,
            ["RetryableWriteError"],
            "commit is retried by itself"
        );
        let mut e = CommandError::new(codes::DUPLICATE_KEY, "x");
        label(&mut e, "insert");
        assert!(e.labels.is_empty());
    }
}
