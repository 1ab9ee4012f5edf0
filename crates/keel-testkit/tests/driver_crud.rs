//! CRUD commands through the official Rust driver: insert, find/getMore/killCursors, update,
//! delete, findAndModify, count and aggregate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ReturnDocument;
use support::Fixture;

fn write_error_codes(e: &mongodb::error::Error) -> Vec<i32> {
    match &*e.kind {
        ErrorKind::InsertMany(f) => f
            .write_errors
            .as_ref()
            .map(|w| w.iter().map(|e| e.code).collect())
            .unwrap_or_default(),
        ErrorKind::Write(WriteFailure::WriteError(w)) => vec![w.code],
        ErrorKind::BulkWrite(_) | _ => Vec::new(),
    }
}

#[tokio::test]
async fn insert_generates_ids_and_reports_duplicates() {
    let f = Fixture::new().await;
    let c = f.coll("ins");
    let r = c.insert_one(doc! {"a": 1}).await.unwrap();
    assert!(matches!(r.inserted_id, Bson::ObjectId(_)));
    let stored = c.find_one(doc! {"a": 1}).await.unwrap().unwrap();
    assert_eq!(stored.keys().next().unwrap(), "_id", "_id is stored first");

    let err = c
        .insert_one(doc! {"_id": r.inserted_id.clone()})
        .await
        .unwrap_err();
    let ErrorKind::Write(WriteFailure::WriteError(w)) = &*err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(w.code, 11000);
    assert!(
        w.message.starts_with(
            "E11000 duplicate key error collection: testkit.ins index: _id_ dup key: { _id: "
        ),
        "{}",
        w.message
    );
}

#[tokio::test]
async fn ordered_insert_stops_unordered_continues() {
    let f = Fixture::new().await;
    let c = f.coll("batch");
    let docs = vec![doc! {"_id": 1}, doc! {"_id": 1}, doc! {"_id": 2}];
    let err = c.insert_many(docs.clone()).await.unwrap_err();
    assert_eq!(write_error_codes(&err), vec![11000]);
    assert_eq!(
        c.count_documents(doc! {}).await.unwrap(),
        1,
        "ordered stops at the first error"
    );

    let c2 = f.coll("batch2");
    let err = c2
        .insert_many(vec![
            doc! {"_id": 1},
            doc! {"_id": 1},
            doc! {"_id": 2},
            doc! {"_id": 2},
        ])
        .ordered(false)
        .await
        .unwrap_err();
    let ErrorKind::InsertMany(failure) = &*err.kind else {
        panic!("{err:?}")
    };
    let indexes: Vec<usize> = failure
        .write_errors
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.index)
        .collect();
    assert_eq!(indexes, vec![1, 3]);
    assert_eq!(c2.count_documents(doc! {}).await.unwrap(), 2);
}

#[tokio::test]
async fn raw_insert_reply_has_key_pattern_and_value() {
    let f = Fixture::new().await;
    let db = f.client.database("testkit");
    db.run_command(doc! {"insert": "raw", "documents": [{"_id": 7, "x": 1}]})
        .await
        .unwrap();
    let reply = db
        .run_command(doc! {"insert": "raw", "documents": [{"_id": 7}], "ordered": true})
        .await
        .unwrap();
    assert_eq!(reply.get_i32("n").unwrap(), 0);
    let we = first_write_error(&reply);
    assert_eq!(we.get_i32("code").unwrap(), 11000);
    assert_eq!(we.get_document("keyPattern").unwrap(), &doc! {"_id": 1});
    assert_eq!(we.get_document("keyValue").unwrap(), &doc! {"_id": 7});
    assert!(we.get_i32("index").is_ok() || we.get_i64("index").is_ok());
}

/// The first entry of a raw write command reply's `writeErrors`.
fn first_write_error(reply: &Document) -> Document {
    reply
        .get_array("writeErrors")
        .expect("the reply has writeErrors")[0]
        .as_document()
        .expect("a write error is a document")
        .clone()
}

async fn seed(c: &mongodb::Collection<Document>, n: i32) {
    let docs: Vec<Document> = (0..n)
        .map(|i| doc! {"_id": i, "n": i, "even": i % 2 == 0, "tag": format!("t{}", i % 3)})
        .collect();
    c.insert_many(docs).await.unwrap();
}

#[tokio::test]
async fn find_with_filter_sort_skip_limit_projection_and_batches() {
    let f = Fixture::new().await;
    let c = f.coll("find");
    seed(&c, 250).await;
    let all: Vec<Document> = c
        .find(doc! {})
        .batch_size(7)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 250, "getMore fetches every batch");

    let page: Vec<Document> = c
        .find(doc! {"even": true})
        .sort(doc! {"n": -1})
        .skip(2)
        .limit(3)
        .projection(doc! {"n": 1, "_id": 0})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        page,
        vec![doc! {"n": 244}, doc! {"n": 242}, doc! {"n": 240}]
    );

    let excl = c
        .find_one(doc! {"_id": 5})
        .projection(doc! {"tag": 0, "even": 0})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(excl, doc! {"_id": 5, "n": 5});
}

#[tokio::test]
async fn get_more_and_kill_cursors_raw() {
    let f = Fixture::new().await;
    let c = f.coll("cur");
    seed(&c, 10).await;
    let db = f.client.database("testkit");
    let first = db
        .run_command(doc! {"find": "cur", "batchSize": 3})
        .await
        .unwrap();
    let cursor = first.get_document("cursor").unwrap();
    assert_eq!(cursor.get_str("ns").unwrap(), "testkit.cur");
    assert_eq!(cursor.get_array("firstBatch").unwrap().len(), 3);
    let id = cursor.get_i64("id").unwrap();
    assert_ne!(id, 0);
    let more = db
        .run_command(doc! {"getMore": id, "collection": "cur", "batchSize": 4})
        .await
        .unwrap();
    let next = more.get_document("cursor").unwrap();
    assert_eq!(next.get_array("nextBatch").unwrap().len(), 4);
    assert_eq!(next.get_i64("id").unwrap(), id);
    let killed = db
        .run_command(doc! {"killCursors": "cur", "cursors": [id, 12345i64]})
        .await
        .unwrap();
    assert_eq!(
        killed.get_array("cursorsKilled").unwrap(),
        &vec![Bson::Int64(id)]
    );
    assert_eq!(
        killed.get_array("cursorsNotFound").unwrap(),
        &vec![Bson::Int64(12345)]
    );
    let err = db
        .run_command(doc! {"getMore": id, "collection": "cur"})
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), Some(43), "CursorNotFound");

    // Dropping a driver cursor early sends killCursors.
    let mut cursor = c.find(doc! {}).batch_size(2).await.unwrap();
    assert!(cursor.advance().await.unwrap());
    drop(cursor);
}

#[tokio::test]
async fn update_operators_upsert_and_multi_counts() {
    let f = Fixture::new().await;
    let c = f.coll("upd");
    seed(&c, 6).await;
    let r = c
        .update_one(
            doc! {"_id": 1},
            doc! {"$set": {"a.b": 1}, "$inc": {"n": 10}, "$push": {"l": 5}, "$unset": {"tag": ""}},
        )
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    assert_eq!(
        c.find_one(doc! {"_id": 1}).await.unwrap().unwrap(),
        doc! {"_id": 1, "n": 11, "even": false, "a": {"b": 1}, "l": [5]}
    );

    let r = c
        .update_one(doc! {"_id": 1}, doc! {"$set": {"n": 11}})
        .await
        .unwrap();
    assert_eq!(
        (r.matched_count, r.modified_count),
        (1, 0),
        "no-op update is matched, not modified"
    );

    let r = c
        .update_many(doc! {"even": true}, doc! {"$set": {"flag": true}})
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (3, 3));

    let r = c
        .update_one(
            doc! {"_id": 100, "k": "v"},
            doc! {"$set": {"x": 1}, "$setOnInsert": {"created": true}},
        )
        .upsert(true)
        .await
        .unwrap();
    assert_eq!(r.upserted_id, Some(Bson::Int32(100)));
    assert_eq!((r.matched_count, r.modified_count), (0, 0));
    assert_eq!(
        c.find_one(doc! {"_id": 100}).await.unwrap().unwrap(),
        doc! {"_id": 100, "k": "v", "x": 1, "created": true}
    );
    let r = c
        .update_one(
            doc! {"_id": 100},
            doc! {"$set": {"x": 2}, "$setOnInsert": {"created": false}},
        )
        .upsert(true)
        .await
        .unwrap();
    assert_eq!(r.upserted_id, None);
    assert!(
        c.find_one(doc! {"_id": 100})
            .await
            .unwrap()
            .unwrap()
            .get_bool("created")
            .unwrap()
    );

    let r = c
        .replace_one(doc! {"_id": 2}, doc! {"replaced": true})
        .await
        .unwrap();
    assert_eq!(r.modified_count, 1);
    assert_eq!(
        c.find_one(doc! {"_id": 2}).await.unwrap().unwrap(),
        doc! {"_id": 2, "replaced": true}
    );
    let r = c
        .replace_one(doc! {"name": "new"}, doc! {"name": "new", "v": 1})
        .upsert(true)
        .await
        .unwrap();
    assert!(matches!(r.upserted_id, Some(Bson::ObjectId(_))));

    let db = f.client.database("testkit");
    let raw = db
        .run_command(doc! {"update": "upd", "updates": [
            {"q": {"_id": 3}, "u": {"$inc": {"n": 1}}},
            {"q": {"_id": 200}, "u": {"$set": {"z": 1}}, "upsert": true},
        ]})
        .await
        .unwrap();
    assert_eq!(raw.get_i32("n").unwrap(), 2);
    assert_eq!(raw.get_i32("nModified").unwrap(), 1);
    let upserted = raw.get_array("upserted").unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    assert_eq!(upserted, doc! {"index": 1, "_id": 200});
}

#[tokio::test]
async fn update_errors_are_write_errors() {
    let f = Fixture::new().await;
    let c = f.coll("upderr");
    c.insert_one(doc! {"_id": 1, "s": "text"}).await.unwrap();
    let codes = |e: mongodb::error::Error| write_error_codes(&e);
    assert_eq!(
        codes(
            c.update_one(doc! {"_id": 1}, doc! {"$inc": {"s": 1}})
                .await
                .unwrap_err()
        ),
        vec![14]
    );
    assert_eq!(
        codes(
            c.update_one(doc! {"_id": 1}, doc! {"$set": {"_id": 2}})
                .await
                .unwrap_err()
        ),
        vec![66]
    );
    assert_eq!(
        codes(
            c.update_one(doc! {"_id": 1}, doc! {"$push": {"s": 1}})
                .await
                .unwrap_err()
        ),
        vec![2]
    );
    let db = f.client.database("testkit");
    let raw = db
        .run_command(doc! {"update": "upderr", "updates": [{"q": {}, "u": {"$frob": {"a": 1}}}]})
        .await
        .unwrap();
    assert_eq!(first_write_error(&raw).get_i32("code").unwrap(), 9);
}

#[tokio::test]
async fn delete_limits() {
    let f = Fixture::new().await;
    let c = f.coll("del");
    seed(&c, 9).await;
    assert_eq!(
        c.delete_one(doc! {"tag": "t0"})
            .await
            .unwrap()
            .deleted_count,
        1
    );
    assert_eq!(
        c.delete_many(doc! {"tag": "t0"})
            .await
            .unwrap()
            .deleted_count,
        2
    );
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 6);
    let err = f
        .client
        .database("testkit")
        .run_command(doc! {"delete": "del", "deletes": [{"q": {}, "limit": 5}]})
        .await
        .unwrap();
    assert_eq!(first_write_error(&err).get_i32("code").unwrap(), 9);
}

#[tokio::test]
async fn find_and_modify_variants() {
    let f = Fixture::new().await;
    let c = f.coll("fam");
    seed(&c, 5).await;
    let before = c
        .find_one_and_update(doc! {"_id": 1}, doc! {"$inc": {"n": 100}})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.get_i32("n").unwrap(), 1);
    let after = c
        .find_one_and_update(doc! {"_id": 1}, doc! {"$inc": {"n": 1}})
        .return_document(ReturnDocument::After)
        .projection(doc! {"n": 1})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, doc! {"_id": 1, "n": 102});
    let first_sorted = c
        .find_one_and_delete(doc! {"even": true})
        .sort(doc! {"n": -1})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first_sorted.get_i32("_id").unwrap(), 4);
    let replaced = c
        .find_one_and_replace(doc! {"_id": 9}, doc! {"v": 1})
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replaced, doc! {"_id": 9, "v": 1});
    assert!(
        c.find_one_and_delete(doc! {"_id": 404})
            .await
            .unwrap()
            .is_none()
    );

    let raw = f.client.database("testkit").run_command(doc! {"findAndModify": "fam", "query": {"_id": 50}, "update": {"$set": {"a": 1}}, "upsert": true}).await.unwrap();
    let last = raw.get_document("lastErrorObject").unwrap();
    assert_eq!(last.get_i32("n").unwrap(), 1);
    assert!(!last.get_bool("updatedExisting").unwrap());
    assert_eq!(last.get_i32("upserted").unwrap(), 50);
    assert_eq!(raw.get("value"), Some(&Bson::Null));
    let err = f
        .client
        .database("testkit")
        .run_command(doc! {"findAndModify": "fam", "query": {}, "remove": true, "update": {"a": 1}})
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), Some(9));
}

#[tokio::test]
async fn count_and_estimated_count() {
    let f = Fixture::new().await;
    let c = f.coll("cnt");
    seed(&c, 12).await;
    assert_eq!(c.estimated_document_count().await.unwrap(), 12);
    assert_eq!(
        c.count_documents(doc! {"even": true})
            .skip(1)
            .limit(3)
            .await
            .unwrap(),
        3
    );
    let raw = f
        .client
        .database("testkit")
        .run_command(doc! {"count": "cnt", "query": {"n": {"$gte": 10}}})
        .await
        .unwrap();
    assert_eq!(raw.get_i32("n").unwrap(), 2);
    let none = f
        .client
        .database("testkit")
        .run_command(doc! {"count": "missing"})
        .await
        .unwrap();
    assert_eq!(none.get_i32("n").unwrap(), 0);
}

#[tokio::test]
async fn aggregate_stages() {
    let f = Fixture::new().await;
    let c = f.coll("agg");
    seed(&c, 9).await;
    let grouped: Vec<Document> = c
        .aggregate(vec![
            doc! {"$match": {"n": {"$gte": 1}}},
            doc! {"$group": {"_id": "$tag", "total": {"$sum": "$n"}, "count": {"$count": {}}, "ones": {"$sum": 1}}},
            doc! {"$sort": {"_id": 1}},
        ])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        grouped,
        vec![
            doc! {"_id": "t0", "total": 9, "count": 2, "ones": 2},
            doc! {"_id": "t1", "total": 12, "count": 3, "ones": 3},
            doc! {"_id": "t2", "total": 15, "count": 3, "ones": 3},
        ]
    );
    let paged: Vec<Document> = c
        .aggregate(vec![
            doc! {"$sort": {"n": -1}},
            doc! {"$skip": 1},
            doc! {"$limit": 2},
            doc! {"$project": {"_id": 0, "n": 1, "copy": "$tag"}},
        ])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        paged,
        vec![doc! {"n": 7, "copy": "t1"}, doc! {"n": 6, "copy": "t0"}]
    );
    let counted: Vec<Document> = c
        .aggregate(vec![
            doc! {"$match": {"even": true}},
            doc! {"$count": "evens"},
        ])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(counted, vec![doc! {"evens": 5}]);
    let err = c.aggregate(vec![doc! {"$frob": {}}]).await.unwrap_err();
    assert_eq!(support::code(&err), Some(40324));
}
