//! Smoke test: the official driver connects, writes and reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mongodb::bson::doc;

#[tokio::test]
async fn driver_round_trip() {
    let f = support::Fixture::new().await;
    let c = f.coll("smoke");
    c.insert_one(doc! {"_id": 1, "a": 1}).await.unwrap();
    let got = c.find_one(doc! {"_id": 1}).await.unwrap().unwrap();
    assert_eq!(got, doc! {"_id": 1, "a": 1});
}
