//! `local.oplog.rs` through the official driver: the oplog window's first and last entries the
//! way `rs.printReplicationInfo()` reads them (`sort({$natural: ±1}).limit(1)`), moving as the
//! bounded oplog drops its oldest entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_testkit::TestServer;
use mongodb::Client;
use mongodb::bson::{Document, Timestamp, doc};
use support::{fast_options, within};

async fn edge(client: &Client, natural: i32) -> Option<Document> {
    within(
        client
            .database("local")
            .collection::<Document>("oplog.rs")
            .find_one(doc! {})
            .sort(doc! {"$natural": natural}),
    )
    .await
    .unwrap()
}

fn ts(d: &Document) -> Timestamp {
    d.get_timestamp("ts").unwrap()
}

#[tokio::test]
async fn the_oplog_window_is_the_first_and_last_entry_of_local_oplog_rs() {
    let server = TestServer::builder()
        .replica_set("rs0", 1)
        .oplog_size(3)
        .start()
        .await
        .unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    assert!(edge(&client, 1).await.is_none(), "no change yet");
    let orders = client.database("app").collection::<Document>("orders");
    for i in 0..5 {
        within(orders.insert_one(doc! {"_id": i})).await.unwrap();
    }
    let first = edge(&client, 1).await.unwrap();
    let last = edge(&client, -1).await.unwrap();
    // Three entries kept: the inserts of 2, 3 and 4.
    assert_eq!(first.get_str("op").unwrap(), "i");
    assert_eq!(first.get_str("ns").unwrap(), "app.orders");
    assert_eq!(first.get_document("o").unwrap(), &doc! {"_id": 2});
    assert_eq!(last.get_document("o").unwrap(), &doc! {"_id": 4});
    assert!(ts(&first) < ts(&last));
    assert!(first.get_datetime("wall").is_ok() && first.get_i64("t").is_ok());
    let all: Vec<Document> = {
        use futures_util::TryStreamExt;
        let cursor = within(
            client
                .database("local")
                .collection::<Document>("oplog.rs")
                .find(doc! {"op": "i"}),
        )
        .await
        .unwrap();
        within(cursor.try_collect()).await.unwrap()
    };
    assert_eq!(all.len(), 3);
    let err = within(
        client
            .database("local")
            .collection::<Document>("oplog.rs")
            .find_one(doc! {})
            .sort(doc! {"ts": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(support::code(&err), Some(115), "{err}");
}

#[tokio::test]
async fn a_standalone_has_no_oplog() {
    let server = TestServer::builder().start().await.unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    client
        .database("app")
        .collection::<Document>("c")
        .insert_one(doc! {"_id": 1})
        .await
        .unwrap();
    assert!(edge(&client, 1).await.is_none());
}

#[tokio::test]
async fn an_idle_primary_writes_periodic_noops_that_move_the_window_and_idle_streams() {
    let server = TestServer::builder()
        .replica_set("rs0", 1)
        .periodic_noop_interval(std::time::Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let orders = client.database("app").collection::<Document>("orders");
    orders.insert_one(doc! {"_id": 1}).await.unwrap();
    let last_write = ts(&edge(&client, -1).await.unwrap());

    // An idle stream: its getMore waits 500 ms server-side and returns no event, but its
    // postBatchResumeToken has moved past the last write (the no-ops).
    let db = client.database("app");
    let opened = db
        .run_command(
            doc! {"aggregate": "orders", "pipeline": [{"$changeStream": {}}], "cursor": {}},
        )
        .await
        .unwrap();
    let cursor = opened.get_document("cursor").unwrap();
    let first_token = cursor.get_document("postBatchResumeToken").unwrap().clone();
    let more = within(db.run_command(doc! {
        "getMore": cursor.get_i64("id").unwrap(), "collection": "orders", "maxTimeMS": 500,
    }))
    .await
    .unwrap();
    let batch = more.get_document("cursor").unwrap();
    assert!(
        batch.get_array("nextBatch").unwrap().is_empty(),
        "no-ops are no events"
    );
    assert_ne!(
        batch.get_document("postBatchResumeToken").unwrap(),
        &first_token,
        "the high-water mark moved on an idle set"
    );

    let newest = edge(&client, -1).await.unwrap();
    assert_eq!(newest.get_str("op"), Ok("n"));
    assert_eq!(newest.get_str("ns"), Ok(""));
    assert_eq!(newest.get_document("o"), Ok(&doc! {"msg": "periodic noop"}));
    assert!(ts(&newest) > last_write);
}
