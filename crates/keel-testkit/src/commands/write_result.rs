//! Per-statement write errors (`writeErrors: [{index, code, errmsg, …}]`) shared by the write
//! commands.

use bson::{Document, doc};

use super::{CommandError, codes};
use crate::storage::DuplicateKey;

/// The error a duplicate key raises, with `keyPattern`/`keyValue` as mongod adds them.
pub(crate) fn duplicate_key_error(ns: &str, dup: &DuplicateKey) -> CommandError {
    let mut e = CommandError::new(codes::DUPLICATE_KEY, dup.message(ns));
    e.extra = Box::new(
        doc! {"keyPattern": (*dup.key_pattern).clone(), "keyValue": (*dup.key_value).clone()},
    );
    e
}

/// One `writeErrors` entry.
pub(crate) fn write_error(index: usize, e: &CommandError) -> Document {
    let mut d = doc! {"index": i64::try_from(index).unwrap_or(i64::MAX), "code": e.code};
    for (k, v) in e.extra.iter() {
        d.insert(k.clone(), v.clone());
    }
    d.insert("errmsg", e.errmsg.clone());
    d
}

/// Adds `writeErrors` to a reply when there are any.
pub(crate) fn attach(reply: &mut Document, errors: Vec<Document>) {
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
}
