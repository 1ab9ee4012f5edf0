//! `renameCollection` (run against `admin`, as mongod requires): the collection keeps its
//! documents, indexes and UUID under the new name; an existing target is dropped only with
//! `dropTarget: true`. Errors as mongod's `renameCollection` command
//! (`rename_collection_cmd.cpp`, `rename_collection.cpp`).

use bson::{Bson, Document, doc};

use super::{CommandError, Ctx, args, codes};
use crate::server::lock;

fn namespace<'a>(cmd: &'a Document, field: &str) -> Result<(&'a str, &'a str), CommandError> {
    let value = match cmd.get(field) {
        Some(Bson::String(s)) => s.as_str(),
        Some(other) => {
            return Err(CommandError::type_mismatch(
                &format!("renameCollection.{field}"),
                "string",
                other,
            ));
        }
        None => {
            return Err(CommandError::failed_to_parse(format!(
                "BSON field 'renameCollection.{field}' is missing but a required field"
            )));
        }
    };
    match value.split_once('.') {
        Some((db, coll)) if !db.is_empty() && !coll.is_empty() => Ok((db, coll)),
        _ => Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            format!("Invalid {field} namespace: {value}"),
        )),
    }
}

pub(super) fn rename_collection(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    if ctx.db != "admin" {
        return Err(CommandError::new(
            codes::UNAUTHORIZED,
            "renameCollection may only be run against the admin database.",
        ));
    }
    let (db, coll) = namespace(cmd, "renameCollection")?;
    let (to_db, to_coll) = namespace(cmd, "to")?;
    args::check_db_name(to_db)?;
    let drop_target = args::opt_bool(cmd, "dropTarget", "renameCollection")?.unwrap_or(false);
    if (db, coll) == (to_db, to_coll) {
        return Err(CommandError::new(
            codes::ILLEGAL_OPERATION,
            "Can't rename a collection to itself",
        ));
    }
    match lock(&ctx.shared.storage).rename_collection(db, coll, to_db, to_coll, drop_target) {
        Ok(()) => Ok(doc! {"ok": 1.0}),
        Err(false) => Err(CommandError::new(
            codes::NAMESPACE_NOT_FOUND,
            format!("Source collection {db}.{coll} does not exist"),
        )),
        Err(true) => Err(CommandError::new(
            codes::NAMESPACE_EXISTS,
            "Target namespace exists",
        )),
    }
}
