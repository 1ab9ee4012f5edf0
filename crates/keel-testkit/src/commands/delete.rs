//! `delete`: statements with `limit` 0 (all matches) or 1 (the first match).

use bson::{Bson, Document, doc};

use super::args;
use super::write_result::{attach, write_error};
use super::{CommandError, Ctx};
use crate::query::filter::Filter;
use crate::server::Counters;

fn parse_statement(raw: &Bson) -> Result<(Filter, usize), CommandError> {
    let Bson::Document(s) = raw else {
        return Err(CommandError::type_mismatch("delete.deletes", "object", raw));
    };
    let q = match s.get("q") {
        Some(Bson::Document(q)) => q,
        Some(other) => return Err(CommandError::type_mismatch("q", "object", other)),
        None => {
            return Err(CommandError::failed_to_parse(
                "BSON field 'delete.deletes.q' is missing but a required field",
            ));
        }
    };
    let limit = args::opt_i64(s, "limit", "delete.deletes")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'delete.deletes.limit' is missing but a required field",
        )
    })?;
    if limit != 0 && limit != 1 {
        return Err(CommandError::failed_to_parse(format!(
            "The limit field in delete objects must be 0 or 1. Got {limit}"
        )));
    }
    Ok((Filter::parse(q)?, usize::from(limit == 1)))
}

pub(super) fn delete(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "delete")?;
    args::check_db_name(ctx.db)?;
    let statements = args::write_batch(cmd, "deletes", "delete")?;
    let ordered = args::opt_bool(cmd, "ordered", "delete")?.unwrap_or(true);
    let mut n = 0usize;
    let mut errors = Vec::new();
    {
        let mut storage = ctx.storage();
        for (index, raw) in statements.iter().enumerate() {
            Counters::add(&ctx.shared.counters.delete, 1);
            match parse_statement(raw) {
                Ok((filter, limit)) => {
                    let rids = storage
                        .collection(ctx.db, coll)
                        .map(|c| c.scan(&filter, limit))
                        .unwrap_or_default();
                    for rid in rids {
                        if storage.delete(ctx.db, coll, rid).is_some() {
                            n += 1;
                        }
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
    let mut reply = doc! {"n": i32::try_from(n).unwrap_or(i32::MAX)};
    attach(&mut reply, errors);
    reply.insert("ok", 1.0);
    Ok(reply)
}
