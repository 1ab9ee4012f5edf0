//! MongoDB's BSON comparison order: canonical type brackets first, then values within a type.
//!
//! Reference: <https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/>.

use std::cmp::Ordering;

use bson::{Bson, Document};

/// The canonical type rank mongod uses (`canonicalizeBSONType`); numbers share one rank,
/// as do strings and symbols.
pub(crate) fn type_rank(v: &Bson) -> i32 {
    match v {
        Bson::MinKey => -1,
        Bson::Undefined => 0,
        Bson::Null => 5,
        Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) => 10,
        Bson::String(_) | Bson::Symbol(_) => 15,
        Bson::Document(_) => 20,
        Bson::Array(_) => 25,
        Bson::Binary(_) => 30,
        Bson::ObjectId(_) => 35,
        Bson::Boolean(_) => 40,
        Bson::DateTime(_) => 45,
        Bson::Timestamp(_) => 47,
        Bson::RegularExpression(_) => 50,
        Bson::DbPointer(_) => 55,
        Bson::JavaScriptCode(_) => 60,
        Bson::JavaScriptCodeWithScope(_) => 65,
        Bson::MaxKey => 127,
    }
}

enum Num {
    Int(i64),
    Float(f64),
}

fn as_num(v: &Bson) -> Option<Num> {
    match v {
        Bson::Int32(i) => Some(Num::Int(i64::from(*i))),
        Bson::Int64(i) => Some(Num::Int(*i)),
        Bson::Double(d) => Some(Num::Float(*d)),
        // bson 2.x has no decimal arithmetic; its string form parses for ordinary values.
        Bson::Decimal128(d) => Some(Num::Float(d.to_string().parse().unwrap_or(f64::NAN))),
        _ => None,
    }
}

/// Numeric value as f64, for arithmetic in `$inc`/`$sum`.
pub(crate) fn as_f64(v: &Bson) -> Option<f64> {
    match as_num(v)? {
        Num::Int(i) => Some(i as f64),
        Num::Float(f) => Some(f),
    }
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    // mongod: NaN equals NaN and sorts below every other number.
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater;
    }
    // Compare exactly: an i64 does not always fit an f64 without rounding.
    if f >= 9.3e18 {
        return Ordering::Less;
    }
    if f <= -9.3e18 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // In range, so the cast is exact for the integral part.
    let ti = t as i64;
    match i.cmp(&ti) {
        Ordering::Equal => {
            if f > t {
                Ordering::Less
            } else if f < t {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        o => o,
    }
}

fn cmp_num(a: &Num, b: &Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(y),
        (Num::Float(x), Num::Float(y)) => cmp_f64(*x, *y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(*x, *y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(*y, *x).reverse(),
    }
}

fn cmp_docs(a: &Document, b: &Document) -> Ordering {
    let mut ia = a.iter();
    let mut ib = b.iter();
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let o = type_rank(va)
                    .cmp(&type_rank(vb))
                    .then_with(|| ka.as_bytes().cmp(kb.as_bytes()))
                    .then_with(|| compare(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

fn cmp_arrays(a: &[Bson], b: &[Bson]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = type_rank(x).cmp(&type_rank(y)).then_with(|| compare(x, y));
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Total order over BSON values, as mongod sorts and compares them (simple collation).
pub(crate) fn compare(a: &Bson, b: &Bson) -> Ordering {
    let rank = type_rank(a).cmp(&type_rank(b));
    if rank != Ordering::Equal {
        return rank;
    }
    match (a, b) {
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Bson::Document(x), Bson::Document(y)) => cmp_docs(x, y),
        (Bson::Array(x), Bson::Array(y)) => cmp_arrays(x, y),
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => x
            .time
            .cmp(&y.time)
            .then_with(|| x.increment.cmp(&y.increment)),
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .cmp(&y.pattern)
            .then_with(|| x.options.cmp(&y.options)),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => x
            .code
            .cmp(&y.code)
            .then_with(|| cmp_docs(&x.scope, &y.scope)),
        (Bson::DbPointer(_), Bson::DbPointer(_)) => Ordering::Equal,
        _ => match (as_num(a), as_num(b)) {
            (Some(x), Some(y)) => cmp_num(&x, &y),
            // MinKey, MaxKey, Null, Undefined: one value per bracket.
            _ => Ordering::Equal,
        },
    }
}

/// Equality as the query language sees it (`1 == 1.0 == NumberLong(1)`).
pub(crate) fn equal(a: &Bson, b: &Bson) -> bool {
    compare(a, b) == Ordering::Equal
}

/// A BSON value ordered by [`compare`], usable as a `BTreeMap` key (index entries).
#[derive(Debug, Clone)]
pub(crate) struct KeyValue(pub(crate) Bson);

impl PartialEq for KeyValue {
    fn eq(&self, other: &Self) -> bool {
        equal(&self.0, &other.0)
    }
}
impl Eq for KeyValue {}
impl PartialOrd for KeyValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for KeyValue {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId};

    #[test]
    fn type_brackets_follow_mongodb_order() {
        let ordered = [
            Bson::MinKey,
            Bson::Null,
            Bson::Int32(-5),
            Bson::Double(2.5),
            Bson::Int64(3),
            Bson::String("a".into()),
            Bson::Document(doc! {"a": 1}),
            Bson::Array(vec![Bson::Int32(1)]),
            Bson::ObjectId(ObjectId::new()),
            Bson::Boolean(false),
            Bson::Boolean(true),
            Bson::DateTime(bson::DateTime::from_millis(0)),
            Bson::MaxKey,
        ];
        for w in ordered.windows(2) {
            assert_eq!(
                compare(&w[0], &w[1]),
                Ordering::Less,
                "{:?} < {:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn numbers_compare_across_types() {
        assert!(equal(&Bson::Int32(1), &Bson::Double(1.0)));
        assert!(equal(&Bson::Int64(1), &Bson::Int32(1)));
        assert_eq!(
            compare(&Bson::Int64(i64::MAX), &Bson::Double(1e19)),
            Ordering::Less
        );
        assert_eq!(
            compare(&Bson::Double(f64::NAN), &Bson::Int32(-100)),
            Ordering::Less
        );
    }
}
