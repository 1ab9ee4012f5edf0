//! Argument extraction with mongod's error codes and messages for wrong types and values.

use bson::{Bson, Document};

use super::{CommandError, codes};

/// The collection named by the command's first field (e.g. `{find: "users"}`).
pub(crate) fn collection_name<'a>(
    cmd: &'a Document,
    command: &str,
) -> Result<&'a str, CommandError> {
    match cmd.get(command) {
        Some(Bson::String(s)) if !s.is_empty() && !s.contains('\0') && !s.starts_with('$') => Ok(s),
        Some(Bson::String(s)) => Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            format!("Invalid namespace specified '{s}'"),
        )),
        Some(other) => Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            format!(
                "collection name has invalid type {}",
                super::error::type_name(other)
            ),
        )),
        None => Err(CommandError::failed_to_parse(format!(
            "missing '{command}' field"
        ))),
    }
}

/// Database names mongod accepts.
pub(crate) fn check_db_name(db: &str) -> Result<(), CommandError> {
    if db.is_empty() || db.len() > 63 || db.chars().any(|c| "/\\. \"$\0".contains(c)) {
        return Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            format!("Invalid database name: '{db}'"),
        ));
    }
    Ok(())
}

/// An optional document argument.
pub(crate) fn opt_doc<'a>(
    cmd: &'a Document,
    field: &str,
    command: &str,
) -> Result<Option<&'a Document>, CommandError> {
    match cmd.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(other) => Err(CommandError::type_mismatch(
            &format!("{command}.{field}"),
            "object",
            other,
        )),
    }
}

/// An optional array argument.
pub(crate) fn opt_array<'a>(
    cmd: &'a Document,
    field: &str,
    command: &str,
) -> Result<Option<&'a Vec<Bson>>, CommandError> {
    match cmd.get(field) {
        None => Ok(None),
        Some(Bson::Array(a)) => Ok(Some(a)),
        Some(other) => Err(CommandError::type_mismatch(
            &format!("{command}.{field}"),
            "array",
            other,
        )),
    }
}

/// An optional whole number (int, long or integral double).
pub(crate) fn opt_i64(
    cmd: &Document,
    field: &str,
    command: &str,
) -> Result<Option<i64>, CommandError> {
    match cmd.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Int32(i)) => Ok(Some(i64::from(*i))),
        Some(Bson::Int64(i)) => Ok(Some(*i)),
        Some(Bson::Double(d)) if d.fract() == 0.0 && d.abs() < 9e18 => Ok(Some(*d as i64)),
        Some(other) => Err(CommandError::type_mismatch(
            &format!("{command}.{field}"),
            "long",
            other,
        )),
    }
}

/// An optional non-negative number (`skip`, `limit`, `batchSize`).
pub(crate) fn opt_non_negative(
    cmd: &Document,
    field: &str,
    command: &str,
) -> Result<Option<usize>, CommandError> {
    match opt_i64(cmd, field, command)? {
        None => Ok(None),
        Some(n) if n < 0 => Err(CommandError::new(
            51024,
            format!("BSON field '{field}' value must be >= 0, actual value '{n}'"),
        )),
        Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
    }
}

/// An optional boolean (numbers are accepted as mongod's IDL parser does for `bool`).
pub(crate) fn opt_bool(
    cmd: &Document,
    field: &str,
    command: &str,
) -> Result<Option<bool>, CommandError> {
    match cmd.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(Bson::Int32(i)) => Ok(Some(*i != 0)),
        Some(Bson::Int64(i)) => Ok(Some(*i != 0)),
        Some(Bson::Double(d)) => Ok(Some(*d != 0.0)),
        Some(other) => Err(CommandError::type_mismatch(
            &format!("{command}.{field}"),
            "bool",
            other,
        )),
    }
}

/// `db.coll`.
pub(crate) fn ns(db: &str, coll: &str) -> String {
    format!("{db}.{coll}")
}

/// The required batch array of a write command (`documents`, `updates`, `deletes`), with
/// mongod's checks: present, an array, 1 to `maxWriteBatchSize` entries (code 16 otherwise).
pub(crate) fn write_batch<'a>(
    cmd: &'a Document,
    field: &str,
    command: &str,
) -> Result<&'a Vec<Bson>, CommandError> {
    use super::handshake::MAX_WRITE_BATCH_SIZE;
    let batch = opt_array(cmd, field, command)?.ok_or_else(|| {
        CommandError::failed_to_parse(format!(
            "BSON field '{command}.{field}' is missing but a required field"
        ))
    })?;
    if batch.is_empty() || batch.len() > MAX_WRITE_BATCH_SIZE as usize {
        return Err(CommandError::new(
            16,
            format!(
                "Write batch sizes must be between 1 and {MAX_WRITE_BATCH_SIZE}. Got {} operations.",
                batch.len()
            ),
        ));
    }
    Ok(batch)
}
