//! Query operators, dotted paths and BSON comparison order, through the official driver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use support::Fixture;

async fn ids(c: &mongodb::Collection<Document>, filter: Document) -> Vec<i32> {
    let docs: Vec<Document> = c
        .find(filter)
        .sort(doc! {"_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    docs.iter().map(|d| d.get_i32("_id").unwrap()).collect()
}

async fn fixture() -> (Fixture, mongodb::Collection<Document>) {
    let f = Fixture::new().await;
    let c = f.coll("ops");
    c.insert_many(vec![
        doc! {"_id": 1, "n": 1, "s": "a", "tags": ["x", "y"], "sub": {"k": 1}},
        doc! {"_id": 2, "n": 2.5, "s": "b", "tags": ["y"], "sub": {"k": 2}},
        doc! {"_id": 3, "n": 3i64, "s": "c", "items": [{"k": 1}, {"k": 9}]},
        doc! {"_id": 4, "n": null},
        doc! {"_id": 5, "n": "5"},
    ])
    .await
    .unwrap();
    (f, c)
}

#[tokio::test]
async fn comparison_operators_with_type_bracketing() {
    let (_f, c) = fixture().await;
    assert_eq!(ids(&c, doc! {"n": {"$eq": 1}}).await, vec![1]);
    assert_eq!(ids(&c, doc! {"n": 1.0}).await, vec![1], "1 == 1.0");
    assert_eq!(
        ids(&c, doc! {"n": {"$gt": 1}}).await,
        vec![2, 3],
        "strings are not > numbers"
    );
    assert_eq!(ids(&c, doc! {"n": {"$gte": 2.5}}).await, vec![2, 3]);
    assert_eq!(ids(&c, doc! {"n": {"$lt": 3}}).await, vec![1, 2]);
    assert_eq!(ids(&c, doc! {"n": {"$lte": 3}}).await, vec![1, 2, 3]);
    assert_eq!(ids(&c, doc! {"n": {"$gt": "4"}}).await, vec![5]);
    assert_eq!(ids(&c, doc! {"n": {"$ne": 1}}).await, vec![2, 3, 4, 5]);
    assert_eq!(ids(&c, doc! {"n": null}).await, vec![4]);
    assert_eq!(
        ids(&c, doc! {"missing": null}).await,
        vec![1, 2, 3, 4, 5],
        "null matches missing"
    );
}

#[tokio::test]
async fn set_and_existence_operators() {
    let (_f, c) = fixture().await;
    assert_eq!(
        ids(&c, doc! {"s": {"$in": ["a", "c", "zz"]}}).await,
        vec![1, 3]
    );
    assert_eq!(
        ids(&c, doc! {"s": {"$nin": ["a", "c"]}}).await,
        vec![2, 4, 5]
    );
    assert_eq!(ids(&c, doc! {"tags": {"$exists": true}}).await, vec![1, 2]);
    assert_eq!(
        ids(&c, doc! {"tags": {"$exists": false}}).await,
        vec![3, 4, 5]
    );
    assert_eq!(
        ids(&c, doc! {"tags": "y"}).await,
        vec![1, 2],
        "array contains"
    );
    assert_eq!(
        ids(&c, doc! {"tags": ["y"]}).await,
        vec![2],
        "whole-array equality"
    );
    assert_eq!(ids(&c, doc! {"tags": {"$in": ["x"]}}).await, vec![1]);
}

#[tokio::test]
async fn logical_operators() {
    let (_f, c) = fixture().await;
    assert_eq!(
        ids(&c, doc! {"$and": [{"n": {"$gte": 1}}, {"n": {"$lt": 3}}]}).await,
        vec![1, 2]
    );
    assert_eq!(
        ids(&c, doc! {"$or": [{"s": "a"}, {"n": null}]}).await,
        vec![1, 4]
    );
    assert_eq!(
        ids(&c, doc! {"$nor": [{"s": "a"}, {"s": "b"}]}).await,
        vec![3, 4, 5]
    );
    assert_eq!(
        ids(&c, doc! {"n": {"$not": {"$gt": 1}}}).await,
        vec![1, 4, 5]
    );
    assert_eq!(ids(&c, doc! {"n": {"$gt": 1, "$lt": 3}}).await, vec![2]);
}

#[tokio::test]
async fn dotted_paths() {
    let (_f, c) = fixture().await;
    assert_eq!(ids(&c, doc! {"sub.k": 2}).await, vec![2]);
    assert_eq!(
        ids(&c, doc! {"items.k": 9}).await,
        vec![3],
        "through arrays of documents"
    );
    assert_eq!(ids(&c, doc! {"items.0.k": 1}).await, vec![3], "array index");
    assert_eq!(ids(&c, doc! {"tags.1": "y"}).await, vec![1]);
    assert_eq!(ids(&c, doc! {"sub.k": {"$gte": 1}}).await, vec![1, 2]);
}

#[tokio::test]
async fn sort_follows_bson_comparison_order() {
    let f = Fixture::new().await;
    let c = f.coll("order");
    let oid = ObjectId::new();
    let values: Vec<Bson> = vec![
        Bson::MaxKey,
        Bson::DateTime(mongodb::bson::DateTime::from_millis(5)),
        Bson::Boolean(true),
        Bson::ObjectId(oid),
        Bson::Array(vec![]),
        Bson::Document(doc! {"a": 1}),
        Bson::String("str".into()),
        Bson::Double(1.5),
        Bson::Int32(1),
        Bson::Null,
        Bson::MinKey,
    ];
    for (i, v) in values.iter().enumerate() {
        c.insert_one(doc! {"_id": i as i32, "v": v.clone()})
            .await
            .unwrap();
    }
    let sorted: Vec<Document> = c
        .find(doc! {})
        .sort(doc! {"v": 1, "_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let order: Vec<i32> = sorted.iter().map(|d| d.get_i32("_id").unwrap()).collect();
    // MinKey < [] (sorts as undefined) < null < numbers < string < object < ObjectId < bool < date < MaxKey.
    assert_eq!(order, vec![10, 4, 9, 8, 7, 6, 5, 3, 2, 1, 0]);
}
