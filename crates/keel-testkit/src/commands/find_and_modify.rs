//! `findAndModify`: update (returning the pre- or post-image), upsert, or remove one document.

use bson::{Bson, Document, doc};

use super::args;
use super::update::execute;
use super::{CommandError, Ctx};
use crate::query::filter::Filter;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;
use crate::query::update::Update;
use crate::server::Counters;

pub(super) fn find_and_modify(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let command = cmd
        .keys()
        .next()
        .map_or("findAndModify", String::as_str)
        .to_owned();
    let coll = args::collection_name(cmd, &command)?;
    args::check_db_name(ctx.db)?;
    let filter = match args::opt_doc(cmd, "query", &command)? {
        Some(q) => Filter::parse(q)?,
        None => Filter::parse(&Document::new())?,
    };
    let sort = args::opt_doc(cmd, "sort", &command)?
        .map(SortSpec::parse)
        .transpose()?
        .unwrap_or_default();
    let fields = args::opt_doc(cmd, "fields", &command)?
        .map(Projection::parse)
        .transpose()?;
    let remove = args::opt_bool(cmd, "remove", &command)?.unwrap_or(false);
    let want_new = args::opt_bool(cmd, "new", &command)?.unwrap_or(false);
    let upsert = args::opt_bool(cmd, "upsert", &command)?.unwrap_or(false);
    let update = cmd
        .get("update")
        .filter(|u| !matches!(u, Bson::Null))
        .map(Update::parse)
        .transpose()?;
    let project = |d: Option<Document>| -> Result<Bson, CommandError> {
        match (d, &fields) {
            (None, _) => Ok(Bson::Null),
            (Some(d), Some(p)) => Ok(Bson::Document(p.apply(&d)?)),
            (Some(d), None) => Ok(Bson::Document(d)),
        }
    };
    let mut storage = ctx.storage();
    match (remove, update) {
        (true, Some(_)) => Err(CommandError::failed_to_parse(
            "Cannot specify both an update and remove=true",
        )),
        (true, None) => {
            if upsert || want_new {
                return Err(CommandError::failed_to_parse(
                    "Cannot specify both upsert=true and remove=true",
                ));
            }
            Counters::add(&ctx.shared.counters.delete, 1);
            let found = storage.collection(ctx.db, coll).and_then(|c| {
                if sort.is_empty() {
                    c.scan(&filter, 1).first().copied()
                } else {
                    let mut docs: Vec<Document> = c
                        .scan(&filter, 0)
                        .into_iter()
                        .filter_map(|r| c.get(r).cloned())
                        .collect();
                    sort.sort(&mut docs);
                    docs.first()
                        .and_then(|d| d.get("_id"))
                        .and_then(|id| c.find_id(id))
                }
            });
            let removed = found.and_then(|rid| storage.delete(ctx.db, coll, rid));
            let n = i32::from(removed.is_some());
            Ok(doc! {"lastErrorObject": {"n": n}, "value": project(removed)?, "ok": 1.0})
        }
        (false, Some(update)) => {
            Counters::add(&ctx.shared.counters.update, 1);
            let a = execute(
                &mut storage,
                ctx.db,
                coll,
                &filter,
                Some(&sort),
                &update,
                upsert,
                false,
            )?;
            let mut last = doc! {"n": i32::from(a.matched > 0 || a.upserted.is_some()), "updatedExisting": a.matched > 0};
            let value = if want_new { a.after } else { a.before };
            if let Some(id) = a.upserted {
                last.insert("upserted", id);
            }
            Ok(doc! {"lastErrorObject": last, "value": project(value)?, "ok": 1.0})
        }
        (false, None) => Err(CommandError::failed_to_parse(
            "Either an update or remove=true must be specified",
        )),
    }
}
