//! Deciding from the request itself whether repeating a write is harmless.

use mongodb::bson::{Bson, Document};

/// Update operators whose effect does not depend on how many times they are applied.
const IDEMPOTENT_OPERATORS: [&str; 5] = ["$set", "$unset", "$setOnInsert", "$min", "$max"];

/// Whether applying `update` twice leaves the same document as applying it once.
pub(crate) fn update_is_idempotent(update: &Document) -> bool {
    !update.is_empty()
        && update
            .keys()
            .all(|operator| IDEMPOTENT_OPERATORS.contains(&operator.as_str()))
}

/// Whether `filter` selects one document by exact `_id` (no operator), so deleting it twice is
/// the same as once.
pub(crate) fn filter_is_exact_id(filter: &Document) -> bool {
    filter.len() == 1
        && match filter.get("_id") {
            Some(Bson::Document(inner)) => !inner.keys().any(|key| key.starts_with('$')),
            Some(_) => true,
            None => false,
        }
}

/// Whether an aggregation pipeline writes (ends in `$out` or `$merge`).
pub(crate) fn pipeline_writes(pipeline: &[Document]) -> bool {
    pipeline
        .last()
        .is_some_and(|stage| stage.contains_key("$out") || stage.contains_key("$merge"))
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn set_like_updates_are_idempotent() {
        assert!(update_is_idempotent(&doc! { "$set": { "a": 1 } }));
        assert!(update_is_idempotent(
            &doc! { "$set": { "a": 1 }, "$unset": { "b": "" } }
        ));
        assert!(update_is_idempotent(
            &doc! { "$max": { "seen": 5 }, "$setOnInsert": { "c": 1 } }
        ));
    }

    #[test]
    fn counting_updates_are_not() {
        assert!(!update_is_idempotent(&doc! { "$inc": { "n": 1 } }));
        assert!(!update_is_idempotent(
            &doc! { "$set": { "a": 1 }, "$push": { "l": 2 } }
        ));
        assert!(!update_is_idempotent(&doc! {}));
        assert!(
            !update_is_idempotent(&doc! { "a": 1 }),
            "a replacement is not an operator update"
        );
    }

    #[test]
    fn exact_id_filters() {
        assert!(filter_is_exact_id(&doc! { "_id": 7 }));
        assert!(filter_is_exact_id(&doc! { "_id": { "tenant": 1, "n": 2 } }));
        assert!(!filter_is_exact_id(&doc! { "_id": { "$gt": 7 } }));
        assert!(!filter_is_exact_id(&doc! { "_id": 7, "x": 1 }));
        assert!(!filter_is_exact_id(&doc! { "name": "a" }));
    }

    #[test]
    fn writing_pipelines() {
        assert!(pipeline_writes(&[
            doc! { "$match": {} },
            doc! { "$out": "copy" }
        ]));
        assert!(pipeline_writes(&[doc! { "$merge": { "into": "x" } }]));
        assert!(!pipeline_writes(&[doc! { "$match": {} }]));
        assert!(!pipeline_writes(&[]));
    }
}
