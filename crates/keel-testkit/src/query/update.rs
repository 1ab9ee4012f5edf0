//! Update documents: replacements and the `$set $unset $inc $push $setOnInsert` operators
//! (plus `$min $max $mul $rename $addToSet $pop $currentDate`).

use bson::{Bson, Document};

use super::compare::{compare, equal};
use super::path;
use crate::commands::{CommandError, codes, error::type_name};

/// A parsed update.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    /// Replace the whole document (keeping `_id`).
    Replacement(Document),
    /// Apply operators in the order given.
    Operators(Vec<(String, Document)>),
}

const OPERATORS: &[&str] = &[
    "$set",
    "$unset",
    "$inc",
    "$push",
    "$setOnInsert",
    "$min",
    "$max",
    "$mul",
    "$rename",
    "$addToSet",
    "$pop",
    "$currentDate",
];

impl Update {
    /// Parses the `u` of an update statement or `update` of findAndModify.
    pub(crate) fn parse(u: &Bson) -> Result<Self, CommandError> {
        let doc = match u {
            Bson::Document(d) => d,
            Bson::Array(_) => {
                return Err(CommandError::new(
                    codes::COMMAND_NOT_SUPPORTED,
                    "pipeline-style updates are not supported by keel-testkit",
                ));
            }
            other => return Err(CommandError::type_mismatch("u", "object", other)),
        };
        let first_is_op = doc.keys().next().is_some_and(|k| k.starts_with('$'));
        if !first_is_op {
            if let Some(k) = doc.keys().find(|k| k.starts_with('$')) {
                return Err(CommandError::new(
                    52,
                    format!(
                        "The dollar ($) prefixed field '{k}' in '{k}' is not allowed in the \
                         context of an update's replacement document. Consider using an \
                         aggregation pipeline with $replaceWith."
                    ),
                ));
            }
            return Ok(Self::Replacement(doc.clone()));
        }
        let mut ops = Vec::with_capacity(doc.len());
        for (op, arg) in doc {
            if !OPERATORS.contains(&op.as_str()) {
                return Err(CommandError::failed_to_parse(format!(
                    "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style \
                     update specified as an array"
                )));
            }
            let Bson::Document(arg) = arg else {
                return Err(CommandError::failed_to_parse(format!(
                    "Modifiers operate on fields but we found type {} instead. For example: \
                     {{$mod: {{<field>: ...}}}} not {{{op}: {arg}}}",
                    type_name(arg)
                )));
            };
            ops.push((op.clone(), arg.clone()));
        }
        Ok(Self::Operators(ops))
    }

    /// Applies the update to `doc` in place. `inserting` enables `$setOnInsert`.
    pub(crate) fn apply(&self, doc: &mut Document, inserting: bool) -> Result<(), CommandError> {
        let original_id = doc.get("_id").cloned();
        match self {
            Self::Replacement(replacement) => {
                let mut next = Document::new();
                if let Some(id) = &original_id {
                    next.insert("_id", id.clone());
                }
                for (k, v) in replacement {
                    next.insert(k.clone(), v.clone());
                }
                *doc = next;
            }
            Self::Operators(ops) => {
                for (op, args) in ops {
                    for (field, arg) in args {
                        apply_one(op, doc, field, arg, inserting)?;
                    }
                }
            }
        }
        if let Some(id) = original_id {
            match doc.get("_id") {
                Some(now) if equal(now, &id) => {}
                Some(now) if !inserting => {
                    return Err(CommandError::new(
                        codes::IMMUTABLE_FIELD,
                        format!(
                            "After applying the update, the (immutable) field '_id' was found to \
                             have been altered to _id: {now}"
                        ),
                    ));
                }
                None if !inserting => {
                    return Err(CommandError::new(
                        codes::IMMUTABLE_FIELD,
                        "Performing an update on the path '_id' would modify the immutable field \
                         '_id'",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn not_viable(e: path::PathNotViable) -> CommandError {
    CommandError::new(
        codes::PATH_NOT_VIABLE,
        format!(
            "Cannot create field '{}' in element {{{}}}",
            e.part, e.existing
        ),
    )
}

fn id_of(doc: &Document) -> String {
    doc.get("_id")
        .map_or_else(|| "{}".to_owned(), |id| format!("{{_id: {id}}}"))
}

fn add_numbers(a: &Bson, b: &Bson, multiply: bool) -> Option<Bson> {
    let int = |v: &Bson| match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        _ => None,
    };
    let both_i32 = matches!((a, b), (Bson::Int32(_), Bson::Int32(_)));
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        let r = if multiply {
            x.checked_mul(y)
        } else {
            x.checked_add(y)
        };
        if let Some(r) = r {
            if both_i32 && let Ok(small) = i32::try_from(r) {
                return Some(Bson::Int32(small));
            }
            return Some(Bson::Int64(r));
        }
    }
    let x = super::compare::as_f64(a)?;
    let y = super::compare::as_f64(b)?;
    Some(Bson::Double(if multiply { x * y } else { x + y }))
}

fn apply_one(
    op: &str,
    doc: &mut Document,
    field: &str,
    arg: &Bson,
    inserting: bool,
) -> Result<(), CommandError> {
    if (field == "_id" || field.starts_with("_id.")) && op != "$setOnInsert" && !inserting {
        let unchanged = op == "$set" && path::get(doc, field).is_some_and(|v| equal(v, arg));
        if !unchanged {
            return Err(CommandError::new(
                codes::IMMUTABLE_FIELD,
                format!(
                    "Performing an update on the path '{field}' would modify the immutable field \
                     '_id'"
                ),
            ));
        }
    }
    match op {
        "$set" => path::set(doc, field, arg.clone()).map_err(not_viable),
        "$setOnInsert" => {
            if inserting {
                path::set(doc, field, arg.clone()).map_err(not_viable)?;
            }
            Ok(())
        }
        "$unset" => {
            path::unset(doc, field);
            Ok(())
        }
        "$inc" | "$mul" => {
            let multiply = op == "$mul";
            if super::compare::as_f64(arg).is_none() {
                return Err(CommandError::new(
                    codes::TYPE_MISMATCH,
                    format!(
                        "Cannot {} with non-numeric argument: {{{field}: {arg}}}",
                        if multiply { "multiply" } else { "increment" }
                    ),
                ));
            }
            let next = match path::get(doc, field) {
                None => {
                    if multiply {
                        add_numbers(&Bson::Int32(0), arg, true)
                    } else {
                        Some(arg.clone())
                    }
                }
                Some(current) => Some(add_numbers(current, arg, multiply).ok_or_else(|| {
                    CommandError::new(
                        codes::TYPE_MISMATCH,
                        format!(
                            "Cannot apply {op} to a value of non-numeric type. {} has the field \
                             '{field}' of non-numeric type {}",
                            id_of(doc),
                            type_name(current)
                        ),
                    )
                })?),
            };
            match next {
                Some(v) => path::set(doc, field, v).map_err(not_viable),
                None => Ok(()),
            }
        }
        "$min" | "$max" => {
            let replace = match path::get(doc, field) {
                None => true,
                Some(cur) => {
                    let o = compare(arg, cur);
                    if op == "$min" { o.is_lt() } else { o.is_gt() }
                }
            };
            if replace {
                path::set(doc, field, arg.clone()).map_err(not_viable)?;
            }
            Ok(())
        }
        "$push" | "$addToSet" => {
            let items = match arg {
                Bson::Document(d) if d.contains_key("$each") => match d.get("$each") {
                    Some(Bson::Array(each)) => each.clone(),
                    _ => {
                        return Err(CommandError::bad_value(
                            "The argument to $each must be an array",
                        ));
                    }
                },
                other => vec![other.clone()],
            };
            let mut current = match path::get(doc, field) {
                None => Vec::new(),
                Some(Bson::Array(a)) => a.clone(),
                Some(other) => {
                    return Err(CommandError::bad_value(format!(
                        "The field '{field}' must be an array but is of type {} in document {}",
                        type_name(other),
                        id_of(doc)
                    )));
                }
            };
            for item in items {
                if op == "$push" || !current.iter().any(|c| equal(c, &item)) {
                    current.push(item);
                }
            }
            path::set(doc, field, Bson::Array(current)).map_err(not_viable)
        }
        "$pop" => {
            if let Some(Bson::Array(a)) = path::get(doc, field) {
                let mut a = a.clone();
                if super::compare::as_f64(arg).is_some_and(|n| n < 0.0) {
                    if !a.is_empty() {
                        a.remove(0);
                    }
                } else {
                    a.pop();
                }
                path::set(doc, field, Bson::Array(a)).map_err(not_viable)?;
            }
            Ok(())
        }
        "$rename" => {
            let Bson::String(to) = arg else {
                return Err(CommandError::bad_value(format!(
                    "The 'to' field for $rename must be a string: {field}: {arg}"
                )));
            };
            if let Some(v) = path::get(doc, field).cloned() {
                path::unset(doc, field);
                path::set(doc, to, v).map_err(not_viable)?;
            }
            Ok(())
        }
        "$currentDate" => {
            let now = bson::DateTime::now();
            let value = match arg {
                Bson::Document(d) if d.get_str("$type") == Ok("timestamp") => {
                    let secs = u32::try_from(now.timestamp_millis() / 1000).unwrap_or(u32::MAX);
                    Bson::Timestamp(bson::Timestamp {
                        time: secs,
                        increment: 1,
                    })
                }
                _ => Bson::DateTime(now),
            };
            path::set(doc, field, value).map_err(not_viable)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn run(u: Document, mut d: Document) -> Result<Document, CommandError> {
        Update::parse(&Bson::Document(u))?.apply(&mut d, false)?;
        Ok(d)
    }

    #[test]
    fn operators_apply() {
        let d = run(
            doc! {"$set": {"a.b": 1}, "$inc": {"n": 2}, "$push": {"l": 3}, "$unset": {"x": ""}},
            doc! {"_id": 1, "n": 1, "x": 1},
        )
        .unwrap();
        assert_eq!(d, doc! {"_id": 1, "n": 3, "a": {"b": 1}, "l": [3]});
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(run(doc! {"$frob": {"a": 1}}, doc! {}).unwrap_err().code, 9);
        assert_eq!(
            run(doc! {"$inc": {"a": 1}}, doc! {"_id": 1, "a": "s"})
                .unwrap_err()
                .code,
            14
        );
        assert_eq!(
            run(doc! {"$set": {"_id": 2}}, doc! {"_id": 1})
                .unwrap_err()
                .code,
            66
        );
        assert_eq!(run(doc! {"_id": 2}, doc! {"_id": 1}).unwrap_err().code, 66);
    }
}
