//! Query filters: parsed once into a tree, then evaluated against each document.
//!
//! Supports `$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $not $nor`, dotted paths and
//! MongoDB's array semantics (a predicate on an array field matches if any element matches).

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::compare::{compare, equal, type_rank};
use super::path;
use crate::commands::CommandError;

/// A parsed filter.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Nor(Vec<Filter>),
    Field { path: String, preds: Vec<Pred> },
}

/// A predicate on the values at one path.
#[derive(Debug, Clone)]
pub(crate) enum Pred {
    Eq(Bson),
    Ne(Bson),
    Cmp(Ordering, bool, Bson),
    In(Vec<Bson>),
    Nin(Vec<Bson>),
    Exists(bool),
    Not(Vec<Pred>),
}

impl Filter {
    /// Parses a filter document; unknown operators and malformed arguments are `BadValue`.
    pub(crate) fn parse(doc: &Document) -> Result<Self, CommandError> {
        let mut clauses = Vec::with_capacity(doc.len());
        for (key, value) in doc {
            clauses.push(match key.as_str() {
                "$and" | "$or" | "$nor" => {
                    let Bson::Array(items) = value else {
                        return Err(CommandError::bad_value(format!("{key} must be an array")));
                    };
                    if items.is_empty() {
                        return Err(CommandError::bad_value(
                            "$and/$or/$nor must be a nonempty array",
                        ));
                    }
                    let mut subs = Vec::with_capacity(items.len());
                    for item in items {
                        let Bson::Document(d) = item else {
                            return Err(CommandError::bad_value(
                                "$or/$and/$nor entries need to be full objects",
                            ));
                        };
                        subs.push(Filter::parse(d)?);
                    }
                    match key.as_str() {
                        "$and" => Filter::And(subs),
                        "$or" => Filter::Or(subs),
                        _ => Filter::Nor(subs),
                    }
                }
                "$comment" => continue,
                k if k.starts_with('$') => {
                    return Err(CommandError::bad_value(format!(
                        "unknown top level operator: {k}. If you have a field name that starts \
                         with a '$' symbol, consider using $getField or $setField."
                    )));
                }
                _ => Filter::Field {
                    path: key.clone(),
                    preds: parse_value(value)?,
                },
            });
        }
        Ok(if clauses.len() == 1 {
            clauses.remove(0)
        } else {
            Filter::And(clauses)
        })
    }

    /// Whether `doc` matches.
    pub(crate) fn matches(&self, doc: &Document) -> bool {
        match self {
            Filter::And(subs) => subs.iter().all(|f| f.matches(doc)),
            Filter::Or(subs) => subs.iter().any(|f| f.matches(doc)),
            Filter::Nor(subs) => !subs.iter().any(|f| f.matches(doc)),
            Filter::Field { path, preds } => {
                let values = path::lookup(doc, path);
                preds.iter().all(|p| p.matches(&values))
            }
        }
    }

    /// Top-level equality conditions, used to seed an upserted document and for `_id` lookups.
    pub(crate) fn equalities(&self) -> Vec<(&str, &Bson)> {
        let mut out = Vec::new();
        self.collect_equalities(&mut out);
        out
    }

    fn collect_equalities<'a>(&'a self, out: &mut Vec<(&'a str, &'a Bson)>) {
        match self {
            Filter::And(subs) => subs.iter().for_each(|f| f.collect_equalities(out)),
            Filter::Field { path, preds } => {
                for p in preds {
                    if let Pred::Eq(v) = p {
                        out.push((path, v));
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_operator_doc(d: &Document) -> bool {
    d.keys().next().is_some_and(|k| k.starts_with('$'))
}

fn parse_value(value: &Bson) -> Result<Vec<Pred>, CommandError> {
    match value {
        Bson::Document(d) if is_operator_doc(d) => parse_operators(d),
        Bson::RegularExpression(_) => Err(CommandError::bad_value(
            "regular expressions are not supported by keel-testkit",
        )),
        other => Ok(vec![Pred::Eq(other.clone())]),
    }
}

fn list(op: &str, v: &Bson) -> Result<Vec<Bson>, CommandError> {
    match v {
        Bson::Array(items) => Ok(items.clone()),
        _ => Err(CommandError::bad_value(format!("{op} needs an array"))),
    }
}

fn parse_operators(d: &Document) -> Result<Vec<Pred>, CommandError> {
    let mut preds = Vec::with_capacity(d.len());
    for (op, arg) in d {
        preds.push(match op.as_str() {
            "$eq" => Pred::Eq(arg.clone()),
            "$ne" => Pred::Ne(arg.clone()),
            "$gt" => Pred::Cmp(Ordering::Greater, false, arg.clone()),
            "$gte" => Pred::Cmp(Ordering::Greater, true, arg.clone()),
            "$lt" => Pred::Cmp(Ordering::Less, false, arg.clone()),
            "$lte" => Pred::Cmp(Ordering::Less, true, arg.clone()),
            "$in" => Pred::In(list("$in", arg)?),
            "$nin" => Pred::Nin(list("$nin", arg)?),
            "$exists" => Pred::Exists(truthy(arg)),
            "$not" => match arg {
                Bson::Document(inner) if is_operator_doc(inner) => {
                    Pred::Not(parse_operators(inner)?)
                }
                Bson::Document(_) => {
                    return Err(CommandError::bad_value("$not cannot be empty"));
                }
                _ => return Err(CommandError::bad_value("$not needs a regex or a document")),
            },
            other if other.starts_with('$') => {
                return Err(CommandError::bad_value(format!(
                    "unknown operator: {other}"
                )));
            }
            _ => {
                // `{a: {$gt: 1, b: 2}}`: mongod rejects mixing operators and fields.
                return Err(CommandError::bad_value(format!("unknown operator: {op}")));
            }
        });
    }
    Ok(preds)
}

/// Truthiness as `$exists` reads its argument.
pub(crate) fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Null | Bson::Undefined => false,
        Bson::Int32(i) => *i != 0,
        Bson::Int64(i) => *i != 0,
        Bson::Double(d) => *d != 0.0,
        _ => true,
    }
}

fn eq_value(candidate: &Bson, target: &Bson) -> bool {
    equal(candidate, target)
        || matches!(candidate, Bson::Array(items) if items.iter().any(|i| equal(i, target)))
}

fn eq_values(values: &[&Bson], target: &Bson) -> bool {
    if matches!(target, Bson::Null) {
        // `{a: null}` also matches documents where `a` is missing.
        return values.is_empty() || values.iter().any(|v| eq_value(v, target));
    }
    values.iter().any(|v| eq_value(v, target))
}

fn cmp_one(candidate: &Bson, dir: Ordering, inclusive: bool, target: &Bson) -> bool {
    // Type bracketing: `$gt: 5` never matches a string; MinKey/MaxKey operands span all types.
    let same_bracket =
        type_rank(candidate) == type_rank(target) || matches!(target, Bson::MinKey | Bson::MaxKey);
    if !same_bracket {
        return false;
    }
    let o = compare(candidate, target);
    o == dir || (inclusive && o == Ordering::Equal)
}

impl Pred {
    fn matches(&self, values: &[&Bson]) -> bool {
        match self {
            Pred::Eq(t) => eq_values(values, t),
            Pred::Ne(t) => !eq_values(values, t),
            Pred::In(ts) => ts.iter().any(|t| eq_values(values, t)),
            Pred::Nin(ts) => !ts.iter().any(|t| eq_values(values, t)),
            Pred::Exists(want) => values.is_empty() != *want,
            Pred::Not(preds) => !preds.iter().all(|p| p.matches(values)),
            Pred::Cmp(dir, inclusive, t) => {
                if *inclusive && matches!(t, Bson::Null) {
                    return eq_values(values, t);
                }
                values.iter().any(|v| {
                    cmp_one(v, *dir, *inclusive, t)
                        || matches!(v, Bson::Array(items)
                            if items.iter().any(|i| cmp_one(i, *dir, *inclusive, t)))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn m(filter: Document, d: Document) -> bool {
        Filter::parse(&filter).unwrap().matches(&d)
    }

    #[test]
    fn operators_and_arrays() {
        assert!(m(doc! {"a": 1}, doc! {"a": [3, 1]}));
        assert!(m(doc! {"a": {"$gt": 2}}, doc! {"a": [1, 5]}));
        assert!(!m(doc! {"a": {"$gt": 2}}, doc! {"a": "zzz"}));
        assert!(m(doc! {"a": null}, doc! {"b": 1}));
        assert!(m(doc! {"a": {"$ne": 1}}, doc! {"b": 1}));
        assert!(m(doc! {"a": {"$not": {"$gt": 5}}}, doc! {"a": 1}));
        assert!(m(doc! {"$nor": [{"a": 1}]}, doc! {"a": 2}));
        assert!(m(doc! {"a.b": {"$in": [7, 8]}}, doc! {"a": [{"b": 8}]}));
        assert!(!m(doc! {"a": {"$exists": true}}, doc! {"b": 1}));
    }

    #[test]
    fn unknown_operator_is_bad_value() {
        let err = Filter::parse(&doc! {"a": {"$frob": 1}}).unwrap_err();
        assert_eq!(err.code, 2);
    }
}
