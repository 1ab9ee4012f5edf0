//! Aggregation expressions, the small subset `$project` and `$group` need: field paths
//! (`"$a.b"`, `"$$ROOT"`), `$literal`, nested objects and arrays, and constants.

use bson::{Bson, Document};

use crate::commands::CommandError;

/// Evaluates `expr` against `doc`; `None` means "missing" (the field is left out).
pub(crate) fn eval(doc: &Document, expr: &Bson) -> Result<Option<Bson>, CommandError> {
    match expr {
        Bson::String(s) if s == "$$ROOT" || s == "$$CURRENT" => {
            Ok(Some(Bson::Document(doc.clone())))
        }
        Bson::String(s) if s.starts_with("$$") => Err(CommandError::new(
            17276,
            format!("Use of undefined variable: {}", &s[2..]),
        )),
        Bson::String(s) if s.starts_with('$') => Ok(field_path(doc, &s[1..])),
        Bson::Document(d) => {
            if let Some((op, arg)) = d.iter().next().filter(|(k, _)| k.starts_with('$')) {
                if d.len() == 1 && op == "$literal" {
                    return Ok(Some(arg.clone()));
                }
                return Err(CommandError::new(
                    168,
                    format!(
                        "Unrecognized expression '{op}' (keel-testkit supports field paths and $literal)"
                    ),
                ));
            }
            let mut out = Document::new();
            for (k, v) in d {
                if let Some(value) = eval(doc, v)? {
                    out.insert(k.clone(), value);
                }
            }
            Ok(Some(Bson::Document(out)))
        }
        Bson::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(eval(doc, item)?.unwrap_or(Bson::Null));
            }
            Ok(Some(Bson::Array(out)))
        }
        other => Ok(Some(other.clone())),
    }
}

/// An aggregation field path: arrays of documents map to arrays of their fields.
fn field_path(doc: &Document, path: &str) -> Option<Bson> {
    let mut parts = path.split('.');
    let first = doc.get(parts.next()?)?.clone();
    parts.try_fold(first, |cur, part| descend(&cur, part))
}

fn descend(v: &Bson, part: &str) -> Option<Bson> {
    match v {
        Bson::Document(d) => d.get(part).cloned(),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter_map(|i| descend_doc_only(i, part))
                .collect(),
        )),
        _ => None,
    }
}

fn descend_doc_only(v: &Bson, part: &str) -> Option<Bson> {
    match v {
        Bson::Document(_) | Bson::Array(_) => descend(v, part),
        _ => None,
    }
}
