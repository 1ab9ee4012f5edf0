//! Namespace commands: `listDatabases`, `listCollections`, `create`, `drop`, `dropDatabase`.

use bson::{Bson, Document, doc};

use super::args::{self, ns};
use super::cursor::first_batch;
use super::{CommandError, Ctx, codes};
use crate::query::filter::Filter;
use crate::server::lock;
use crate::storage::Collection;
use crate::storage::options::CollectionOptions;

fn parse_filter(cmd: &Document, command: &str) -> Result<Option<Filter>, CommandError> {
    args::opt_doc(cmd, "filter", command)?
        .map(Filter::parse)
        .transpose()
}

pub(super) fn list_databases(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let filter = parse_filter(cmd, "listDatabases")?;
    let name_only = args::opt_bool(cmd, "nameOnly", "listDatabases")?.unwrap_or(false);
    let storage = lock(&ctx.shared.storage);
    let mut databases = Vec::new();
    for (name, db) in &storage.databases {
        // Sizes are nominal: nothing is laid out on disk the way mongod's engine does.
        let entry = if name_only {
            doc! {"name": name}
        } else {
            let empty = db.collections.values().all(|c| c.len() == 0);
            doc! {"name": name, "sizeOnDisk": if empty { 0i64 } else { 4096i64 }, "empty": empty}
        };
        if filter.as_ref().is_none_or(|f| f.matches(&entry)) {
            databases.push(entry);
        }
    }
    let mut reply = doc! {"databases": databases};
    if !name_only {
        let total: i64 = storage.databases.len() as i64 * 4096;
        reply.insert("totalSize", total);
        reply.insert("totalSizeMb", total / (1024 * 1024));
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

fn collection_info(name: &str, c: &Collection, name_only: bool) -> Document {
    if name_only {
        return doc! {"name": name, "type": "collection"};
    }
    // As mongod, the options the collection was created or `collMod`ed with.
    let mut options = if c.pre_post_images {
        doc! {"changeStreamPreAndPostImages": {"enabled": true}}
    } else {
        doc! {}
    };
    options.extend(c.options.to_document());
    doc! {
        "name": name,
        "type": "collection",
        "options": options,
        "info": {"readOnly": false, "uuid": c.uuid},
        "idIndex": Collection::id_index_spec(),
    }
}

pub(super) fn list_collections(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let filter = parse_filter(cmd, "listCollections")?;
    let name_only = args::opt_bool(cmd, "nameOnly", "listCollections")?.unwrap_or(false);
    let batch_size = match args::opt_doc(cmd, "cursor", "listCollections")? {
        Some(c) => args::opt_non_negative(c, "batchSize", "listCollections.cursor")?,
        None => None,
    };
    let mut docs: Vec<Document> = {
        let storage = lock(&ctx.shared.storage);
        storage
            .databases
            .get(ctx.db)
            .map(|db| {
                db.collections
                    .iter()
                    .map(|(name, c)| collection_info(name, c, name_only))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Views among the collections, by name as mongod lists them.
    docs.extend(super::views::list(ctx, name_only));
    docs.sort_by(|a, b| a.get_str("name").ok().cmp(&b.get_str("name").ok()));
    docs.retain(|d| filter.as_ref().is_none_or(|f| f.matches(d)));
    Ok(first_batch(
        ctx,
        format!("{}.$cmd.listCollections", ctx.db),
        docs,
        batch_size,
        false,
    ))
}

pub(super) fn create(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "create")?;
    args::check_db_name(ctx.db)?;
    if cmd.contains_key("viewOn") {
        return super::views::create(ctx, coll, cmd);
    }
    for unsupported in ["timeseries", "clusteredIndex"] {
        if cmd
            .get(unsupported)
            .is_some_and(|v| !matches!(v, Bson::Boolean(false)))
        {
            return Err(CommandError::new(
                codes::COMMAND_NOT_SUPPORTED,
                format!("create option '{unsupported}' is not supported by keel-testkit"),
            ));
        }
    }
    let images = pre_post_images(cmd, "create")?;
    let options = CollectionOptions::parse(cmd)?;
    let mut storage = lock(&ctx.shared.storage);
    if storage.view(ctx.db, coll).is_some()
        || !storage.create_collection(ctx.db, coll, images == Some(true), options)
    {
        return Err(CommandError::new(
            codes::NAMESPACE_EXISTS,
            format!("Collection {} already exists.", ns(ctx.db, coll)),
        ));
    }
    Ok(doc! {"ok": 1.0})
}

/// `changeStreamPreAndPostImages: {enabled: <bool>}`, if present.
fn pre_post_images(cmd: &Document, command: &str) -> Result<Option<bool>, CommandError> {
    let Some(opt) = args::opt_doc(cmd, "changeStreamPreAndPostImages", command)? else {
        return Ok(None);
    };
    match opt.get("enabled") {
        Some(Bson::Boolean(b)) if opt.len() == 1 => Ok(Some(*b)),
        _ => Err(CommandError::failed_to_parse(format!(
            "BSON field '{command}.changeStreamPreAndPostImages' must be {{enabled: <bool>}}"
        ))),
    }
}

/// `collMod`: only `changeStreamPreAndPostImages` is supported.
pub(super) fn coll_mod(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "collMod")?;
    if let Some(other) = cmd.keys().skip(1).find(|k| {
        !k.starts_with('$')
            && !matches!(
                k.as_str(),
                "changeStreamPreAndPostImages" | "lsid" | "txnNumber" | "writeConcern" | "comment"
            )
    }) {
        return Err(CommandError::new(
            codes::COMMAND_NOT_SUPPORTED,
            format!("collMod option '{other}' is not supported by keel-testkit"),
        ));
    }
    let images = pre_post_images(cmd, "collMod")?;
    let mut storage = lock(&ctx.shared.storage);
    if storage.collection(ctx.db, coll).is_none() {
        return Err(CommandError::new(
            codes::NAMESPACE_NOT_FOUND,
            format!("ns does not exist: {}", ns(ctx.db, coll)),
        ));
    }
    if let Some(enabled) = images {
        storage.set_pre_post_images(ctx.db, coll, enabled);
    }
    Ok(doc! {"ok": 1.0})
}

pub(super) fn drop(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "drop")?;
    if let Some(reply) = super::views::drop(ctx, coll) {
        return Ok(reply);
    }
    let dropped = lock(&ctx.shared.storage).drop_collection(ctx.db, coll);
    // Since MongoDB 7.0 dropping a missing collection succeeds with a bare `{ok: 1}`.
    Ok(match dropped {
        Some(n) => {
            doc! {"nIndexesWas": i32::try_from(n).unwrap_or(i32::MAX), "ns": ns(ctx.db, coll), "ok": 1.0}
        }
        None => doc! {"ok": 1.0},
    })
}

pub(super) fn drop_database(ctx: &Ctx<'_>, _: &Document) -> Result<Document, CommandError> {
    args::check_db_name(ctx.db)?;
    let mut storage = lock(&ctx.shared.storage);
    let existed = storage.databases.contains_key(ctx.db);
    storage.drop_database(ctx.db);
    Ok(if existed {
        doc! {"dropped": ctx.db, "ok": 1.0}
    } else {
        doc! {"ok": 1.0}
    })
}
