//! Retryable writes: the reply of each session's latest retryable write (`lsid` + `txnNumber`),
//! so a retry of a write that already ran returns its first result instead of running again,
//! as mongod's session catalog does. Replica sets only (drivers send `txnNumber` only there).

use std::collections::HashMap;

use bson::{Bson, Document};

use crate::commands::CommandError;

/// Sessions remembered before the table starts afresh (a test never comes near it).
const MAX_SESSIONS: usize = 10_000;

/// mongod's TransactionTooOld.
const TRANSACTION_TOO_OLD: i32 = 225;

/// What the table says about an incoming write.
#[derive(Debug)]
pub(crate) enum Seen {
    /// Not seen: run it (and [`RetryableWrites::record`] the reply).
    New,
    /// Already ran: answer this reply again.
    Done(Document),
}

/// The retryable-write key of a command: `(lsid.id, txnNumber)`, for the write commands
/// drivers retry.
pub(crate) fn key(command: &str, body: &Document) -> Option<(Vec<u8>, i64)> {
    if !matches!(
        command,
        "insert" | "update" | "delete" | "findAndModify" | "findandmodify"
    ) || body.contains_key("autocommit")
    {
        // A statement of a multi-document transaction (`autocommit: false`) is not a
        // retryable write: the transaction table handles it.
        return None;
    }
    let txn = match body.get("txnNumber")? {
        Bson::Int64(n) => *n,
        Bson::Int32(n) => i64::from(*n),
        _ => return None,
    };
    let id = match body.get_document("lsid").ok()?.get("id")? {
        Bson::Binary(b) => b.bytes.clone(),
        _ => return None,
    };
    Some((id, txn))
}

/// Latest retryable write per session.
#[derive(Debug, Default)]
pub(crate) struct RetryableWrites {
    sessions: HashMap<Vec<u8>, (i64, Document)>,
}

impl RetryableWrites {
    /// Looks a write up before running it.
    pub(crate) fn check(&self, session: &[u8], txn: i64) -> Result<Seen, CommandError> {
        match self.sessions.get(session) {
            Some((done, reply)) if *done == txn => Ok(Seen::Done(reply.clone())),
            Some((done, _)) if *done > txn => Err(CommandError::new(
                TRANSACTION_TOO_OLD,
                format!(
                    "Retryable write with txnNumber {txn} is prohibited on session because a \
                     newer retryable write with txnNumber {done} has already started on this \
                     session."
                ),
            )),
            _ => Ok(Seen::New),
        }
    }

    /// Remembers a write that fully succeeded (a reply with errors is not remembered: a retry
    /// runs the failed part again, as the statements did not apply).
    pub(crate) fn record(&mut self, session: Vec<u8>, txn: i64, reply: &Document) {
        let succeeded = reply.get_f64("ok") == Ok(1.0) && !reply.contains_key("writeErrors");
        if !succeeded {
            return;
        }
        if self.sessions.len() >= MAX_SESSIONS && !self.sessions.contains_key(&session) {
            self.sessions.clear();
        }
        self.sessions.insert(session, (txn, reply.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn a_retry_gets_the_first_reply_and_older_numbers_are_refused() {
        let body = doc! {"insert": "c", "lsid": {"id": Bson::Binary(bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![1; 16] })}, "txnNumber": 5i64};
        let (session, txn) = key("insert", &body).unwrap();
        assert!(key("find", &body).is_none());
        let mut table = RetryableWrites::default();
        assert!(matches!(table.check(&session, txn), Ok(Seen::New)));
        table.record(session.clone(), txn, &doc! {"n": 1, "ok": 1.0});
        assert!(matches!(table.check(&session, 5), Ok(Seen::Done(r)) if r.get_i32("n") == Ok(1)));
        assert_eq!(table.check(&session, 4).unwrap_err().code, 225);
        assert!(matches!(table.check(&session, 6), Ok(Seen::New)));
        table.record(session.clone(), 6, &doc! {"ok": 1.0, "writeErrors": []});
        assert!(
            matches!(table.check(&session, 6), Ok(Seen::New)),
            "errors are not remembered"
        );
    }
}
