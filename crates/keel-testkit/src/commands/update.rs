//! `update`: replacement and operator updates, `upsert`, `multi`, with mongod's `n`,
//! `nModified` and `upserted` accounting. The statement executor is shared with findAndModify.

use bson::{Bson, Document, doc};

use super::args::{self, ns};
use super::insert::prepare_for_insert;
use super::write_result::{attach, duplicate_key_error, write_error};
use super::{CommandError, Ctx};
use crate::query::filter::Filter;
use crate::query::path;
use crate::query::sort::SortSpec;
use crate::query::update::Update;
use crate::server::Counters;
use crate::storage::Storage;

/// The result of one update statement.
#[derive(Debug, Default)]
pub(super) struct Applied {
    pub(super) matched: usize,
    pub(super) modified: usize,
    pub(super) upserted: Option<Bson>,
    pub(super) before: Option<Document>,
    pub(super) after: Option<Document>,
}

/// The document an upsert starts from: the query's equality conditions.
fn upsert_seed(filter: &Filter, update: &Update) -> Document {
    let mut seed = Document::new();
    for (p, v) in filter.equalities() {
        let is_id = p == "_id";
        if matches!(update, Update::Replacement(_)) && !is_id {
            continue;
        }
        let _ = path::set(&mut seed, p, v.clone());
    }
    seed
}

/// Runs one update statement under the storage lock.
#[allow(clippy::too_many_arguments)]
pub(super) fn execute(
    storage: &mut Storage,
    db: &str,
    coll: &str,
    filter: &Filter,
    sort: Option<&SortSpec>,
    update: &Update,
    upsert: bool,
    multi: bool,
) -> Result<Applied, CommandError> {
    let namespace = ns(db, coll);
    let rids: Vec<u64> = match storage.collection(db, coll) {
        None => Vec::new(),
        Some(c) => match sort.filter(|s| !s.is_empty()) {
            Some(sort) if !multi => {
                let mut docs: Vec<Document> = c
                    .scan(filter, 0)
                    .into_iter()
                    .filter_map(|r| c.get(r).cloned())
                    .collect();
                sort.sort(&mut docs);
                docs.first()
                    .and_then(|d| d.get("_id"))
                    .and_then(|id| c.find_id(id))
                    .into_iter()
                    .collect()
            }
            _ => c.scan(filter, if multi { 0 } else { 1 }),
        },
    };
    let mut applied = Applied::default();
    if rids.is_empty() {
        if upsert {
            let mut doc = upsert_seed(filter, update);
            update.apply(&mut doc, true)?;
            let doc = prepare_for_insert(doc)?;
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            storage.validate(db, coll, None, &doc)?;
            storage
                .insert(db, coll, doc.clone())
                .map_err(|dup| duplicate_key_error(&namespace, &dup))?;
            applied.upserted = Some(id);
            applied.after = Some(doc);
        }
        return Ok(applied);
    }
    for rid in rids {
        let Some(before) = storage
            .collection(db, coll)
            .and_then(|c| c.get(rid))
            .cloned()
        else {
            continue;
        };
        let mut after = before.clone();
        update.apply(&mut after, false)?;
        applied.matched += 1;
        if after != before {
            storage.validate(db, coll, Some(&before), &after)?;
            storage
                .replace(
                    db,
                    coll,
                    rid,
                    after.clone(),
                    matches!(update, Update::Replacement(_)),
                )
                .map_err(|dup| duplicate_key_error(&namespace, &dup))?;
            applied.modified += 1;
        }
        if applied.before.is_none() {
            applied.before = Some(before);
            applied.after = Some(after);
        }
    }
    Ok(applied)
}

struct Statement {
    filter: Filter,
    update: Update,
    upsert: bool,
    multi: bool,
}

fn parse_statement(raw: &Bson) -> Result<Statement, CommandError> {
    let Bson::Document(s) = raw else {
        return Err(CommandError::type_mismatch("update.updates", "object", raw));
    };
    let q = match s.get("q") {
        Some(Bson::Document(q)) => q,
        Some(other) => return Err(CommandError::type_mismatch("q", "object", other)),
        None => {
            return Err(CommandError::failed_to_parse(
                "BSON field 'update.updates.q' is missing but a required field",
            ));
        }
    };
    let u = s.get("u").ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'update.updates.u' is missing but a required field",
        )
    })?;
    let update = Update::parse(u)?;
    let multi = args::opt_bool(s, "multi", "update.updates")?.unwrap_or(false);
    if multi && matches!(update, Update::Replacement(_)) {
        return Err(CommandError::failed_to_parse(
            "multi update is not supported for replacement-style update",
        ));
    }
    if s.contains_key("arrayFilters") {
        return Err(CommandError::new(
            super::codes::COMMAND_NOT_SUPPORTED,
            "arrayFilters are not supported by keel-testkit",
        ));
    }
    Ok(Statement {
        filter: Filter::parse(q)?,
        update,
        upsert: args::opt_bool(s, "upsert", "update.updates")?.unwrap_or(false),
        multi,
    })
}

pub(super) fn update(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "update")?;
    args::check_db_name(ctx.db)?;
    let statements = args::write_batch(cmd, "updates", "update")?;
    let ordered = args::opt_bool(cmd, "ordered", "update")?.unwrap_or(true);
    let (mut n, mut modified) = (0usize, 0usize);
    let mut upserted = Vec::new();
    let mut errors = Vec::new();
    {
        let mut storage = ctx.storage();
        for (index, raw) in statements.iter().enumerate() {
            let result = parse_statement(raw).and_then(|s| {
                execute(
                    &mut storage,
                    ctx.db,
                    coll,
                    &s.filter,
                    None,
                    &s.update,
                    s.upsert,
                    s.multi,
                )
            });
            Counters::add(&ctx.shared.counters.update, 1);
            match result {
                Ok(a) => {
                    n += a.matched;
                    modified += a.modified;
                    if let Some(id) = a.upserted {
                        n += 1;
                        upserted.push(
                            doc! {"index": i32::try_from(index).unwrap_or(i32::MAX), "_id": id},
                        );
                    }
                }
                Err(e) => {
                    errors.push(write_error(index, &e));
                    if ordered {
                        break;
                    }
                }
            }
        }
    }
    let to_i32 = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
    let mut reply = doc! {"n": to_i32(n)};
    if !upserted.is_empty() {
        reply.insert("upserted", upserted);
    }
    reply.insert("nModified", to_i32(modified));
    attach(&mut reply, errors);
    reply.insert("ok", 1.0);
    Ok(reply)
}
