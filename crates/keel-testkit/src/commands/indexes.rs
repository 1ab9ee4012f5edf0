//! Index commands: `createIndexes` (unique indexes are enforced), `listIndexes`, `dropIndexes`.

use bson::{Bson, Document, doc};

use super::args::{self, ns};
use super::cursor::first_batch;
use super::write_result::duplicate_key_error;
use super::{CommandError, Ctx, codes};
use crate::server::lock;
use crate::storage::IndexSpecError;

fn normalize_spec(raw: &Bson) -> Result<Document, CommandError> {
    let Bson::Document(raw) = raw else {
        return Err(CommandError::type_mismatch(
            "createIndexes.indexes",
            "object",
            raw,
        ));
    };
    let key = match raw.get("key") {
        Some(Bson::Document(k)) if !k.is_empty() => k.clone(),
        Some(Bson::Document(_)) => {
            return Err(CommandError::new(
                67,
                "Index keys cannot be an empty field.",
            ));
        }
        _ => {
            return Err(CommandError::failed_to_parse(
                "The 'key' field is a required property of an index specification",
            ));
        }
    };
    for (field, dir) in &key {
        let ok = match dir {
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
                crate::query::compare::as_f64(dir).is_some_and(|n| n != 0.0)
            }
            Bson::String(s) => ["text", "hashed", "2d", "2dsphere"].contains(&s.as_str()),
            _ => false,
        };
        if !ok {
            return Err(CommandError::new(
                67,
                format!(
                    "Values in the index key pattern can contain only non-zero numbers or strings; found {field}: {dir}"
                ),
            ));
        }
    }
    let name = match raw.get("name") {
        Some(Bson::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(CommandError::failed_to_parse(
                "The 'name' field is a required property of an index specification",
            ));
        }
    };
    let mut spec = doc! {"v": 2, "key": key, "name": name};
    for (k, v) in raw {
        if !["v", "key", "name", "ns"].contains(&k.as_str()) {
            spec.insert(k.clone(), v.clone());
        }
    }
    if matches!(spec.get("unique"), Some(Bson::Boolean(false))) {
        spec.remove("unique");
    }
    Ok(spec)
}

pub(super) fn create_indexes(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "createIndexes")?;
    args::check_db_name(ctx.db)?;
    let raw = args::opt_array(cmd, "indexes", "createIndexes")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'createIndexes.indexes' is missing but a required field",
        )
    })?;
    if raw.is_empty() {
        return Err(CommandError::bad_value(
            "Must specify at least one index to create",
        ));
    }
    let specs = raw
        .iter()
        .map(normalize_spec)
        .collect::<Result<Vec<_>, _>>()?;
    let mut storage = lock(&ctx.shared.storage);
    let created_collection = storage.ensure_collection(ctx.db, coll);
    let before = storage
        .collection(ctx.db, coll)
        .map_or(0, |c| c.indexes().len());
    for spec in specs {
        storage
            .create_index(ctx.db, coll, spec)
            .map_err(|e| match e {
                IndexSpecError::Duplicate(dup) => {
                    let mut err = duplicate_key_error(&ns(ctx.db, coll), &dup);
                    err.errmsg = format!("Index build failed: {}", err.errmsg);
                    err
                }
                IndexSpecError::Conflict { code, errmsg } => CommandError::new(code, errmsg),
            })?;
    }
    let after = storage
        .collection(ctx.db, coll)
        .map_or(0, |c| c.indexes().len());
    let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let mut reply = doc! {"numIndexesBefore": to_i32(before), "numIndexesAfter": to_i32(after)};
    if before == after {
        reply.insert("note", "all indexes already exist");
    } else {
        reply.insert("createdCollectionAutomatically", created_collection);
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

pub(super) fn list_indexes(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let coll = args::collection_name(cmd, "listIndexes")?;
    let batch_size = match args::opt_doc(cmd, "cursor", "listIndexes")? {
        Some(c) => args::opt_non_negative(c, "batchSize", "listIndexes.cursor")?,
        None => None,
    };
    let specs: Vec<Document> = {
        let storage = lock(&ctx.shared.storage);
        let c = storage.collection(ctx.db, coll).ok_or_else(|| {
            CommandError::new(
                codes::NAMESPACE_NOT_FOUND,
                format!("ns does not exist: {}", ns(ctx.db, coll)),
            )
        })?;
        c.indexes().iter().map(|i| i.spec.clone()).collect()
    };
    Ok(first_batch(ctx, ns(ctx.db, coll), specs, batch_size, false))
}

pub(super) fn drop_indexes(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let command = cmd
        .keys()
        .next()
        .map_or("dropIndexes", String::as_str)
        .to_owned();
    let coll = args::collection_name(cmd, &command)?;
    let mut storage = lock(&ctx.shared.storage);
    let existing: Vec<(String, Document)> = storage
        .collection(ctx.db, coll)
        .ok_or_else(|| {
            CommandError::new(
                codes::NAMESPACE_NOT_FOUND,
                format!("ns not found {}", ns(ctx.db, coll)),
            )
        })?
        .indexes()
        .iter()
        .map(|i| (i.name.clone(), i.key.clone()))
        .collect();
    let not_found = |what: String| {
        CommandError::new(
            codes::INDEX_NOT_FOUND,
            format!("index not found with name [{what}]"),
        )
    };
    let names: Vec<String> = match cmd.get("index") {
        Some(Bson::String(s)) if s == "*" => {
            existing.iter().skip(1).map(|(n, _)| n.clone()).collect()
        }
        Some(Bson::String(s)) => vec![s.clone()],
        Some(Bson::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| CommandError::type_mismatch("dropIndexes.index", "string", i))
            })
            .collect::<Result<_, _>>()?,
        Some(Bson::Document(key)) => {
            let name = existing
                .iter()
                .find(|(_, k)| k == key)
                .map(|(n, _)| n.clone())
                .ok_or_else(|| {
                    CommandError::new(
                        codes::INDEX_NOT_FOUND,
                        format!("can't find index with key: {key}"),
                    )
                })?;
            vec![name]
        }
        Some(other) => {
            return Err(CommandError::type_mismatch(
                "dropIndexes.index",
                "string",
                other,
            ));
        }
        None => {
            return Err(CommandError::failed_to_parse(
                "BSON field 'dropIndexes.index' is missing but a required field",
            ));
        }
    };
    for name in &names {
        if name == "_id_" {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "cannot drop _id index",
            ));
        }
        if !existing.iter().any(|(n, _)| n == name) {
            return Err(not_found(name.clone()));
        }
    }
    for name in &names {
        storage.drop_index(ctx.db, coll, name);
    }
    Ok(doc! {"nIndexesWas": i32::try_from(existing.len()).unwrap_or(i32::MAX), "ok": 1.0})
}
