//! Sort specifications (`{a: 1, b: -1}`) and the stable sort mongod applies.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::compare::compare;
use super::path;
use crate::commands::CommandError;

/// A parsed sort: `(path, ascending)` pairs in priority order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SortSpec(Vec<(String, bool)>);

impl SortSpec {
    /// Parses a sort document; each value must be 1 or -1 (`$natural` is accepted and ignored).
    pub(crate) fn parse(doc: &Document) -> Result<Self, CommandError> {
        let mut keys = Vec::with_capacity(doc.len());
        for (field, dir) in doc {
            let n = super::compare::as_f64(dir).ok_or_else(|| {
                CommandError::new(
                    15974,
                    format!("Illegal key in $sort specification: {field}: {dir}"),
                )
            })?;
            if field == "$natural" {
                continue;
            }
            let ascending = if n == 1.0 {
                true
            } else if n == -1.0 {
                false
            } else {
                return Err(CommandError::new(
                    15975,
                    "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
                ));
            };
            keys.push((field.clone(), ascending));
        }
        Ok(Self(keys))
    }

    /// Whether the spec sorts on nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorts in place; ties keep their current (insertion) order.
    pub(crate) fn sort(&self, docs: &mut Vec<Document>) {
        if self.0.is_empty() {
            return;
        }
        let mut keyed: Vec<(Vec<Bson>, Document)> = docs
            .drain(..)
            .map(|d| {
                (
                    self.0
                        .iter()
                        .map(|(p, asc)| sort_key(&d, p, *asc))
                        .collect(),
                    d,
                )
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            for ((x, y), (_, asc)) in a.iter().zip(b).zip(&self.0) {
                let o = compare(x, y);
                if o != Ordering::Equal {
                    return if *asc { o } else { o.reverse() };
                }
            }
            Ordering::Equal
        });
        docs.extend(keyed.into_iter().map(|(_, d)| d));
    }
}

/// The key mongod sorts a document by: for arrays, the smallest element ascending and the
/// largest descending; a missing field sorts as null.
fn sort_key(doc: &Document, p: &str, ascending: bool) -> Bson {
    let mut candidates: Vec<&Bson> = Vec::new();
    for v in path::lookup(doc, p) {
        match v {
            Bson::Array(items) if !items.is_empty() => candidates.extend(items.iter()),
            // mongod sorts an empty array below null (as `undefined`).
            Bson::Array(_) => candidates.push(&Bson::Undefined),
            other => candidates.push(other),
        }
    }
    let pick = if ascending {
        candidates.into_iter().min_by(|a, b| compare(a, b))
    } else {
        candidates.into_iter().max_by(|a, b| compare(a, b))
    };
    pick.cloned().unwrap_or(Bson::Null)
}
