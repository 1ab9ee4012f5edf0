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
