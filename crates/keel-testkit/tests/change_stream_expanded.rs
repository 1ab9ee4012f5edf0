//! `showExpandedEvents` through the official driver: a cluster stream opened with it reports
//! `create` (implicit and explicit, with its options), `createIndexes`, `dropIndexes`, `modify`,
//! `rename` (with `operationDescription`), `drop` and `dropDatabase`, each with `collectionUUID`
//! (but `dropDatabase`); a stream without it sees only `rename`, `drop` and `dropDatabase` of
//! these, as before MongoDB 6.0, and a collection stream is invalidated by a rename.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::change_stream::ChangeStream;
use support::{next_event, replica_set, within};

async fn take(s: &mut ChangeStream<Document>, n: usize) -> Vec<Document> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_event(s).await);
    }
    out
}

fn kinds(events: &[Document]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.get_str("operationType").unwrap())
        .collect()
}

#[tokio::test]
async fn ddl_events_are_reported_only_to_streams_that_ask_for_expanded_events() {
    let (_server, client) = replica_set(1).await;
    let mut expanded = within(client.watch().show_expanded_events(true))
        .await
        .unwrap()
        .with_type::<Document>();
    let mut plain = within(client.watch())
        .await
        .unwrap()
        .with_type::<Document>();
    let db = client.database("app");
    within(db.run_command(doc! {"create": "a", "changeStreamPreAndPostImages": {"enabled": true}}))
        .await
        .unwrap();
    let a = db.collection::<Document>("a");
    let mut on_a = within(a.watch()).await.unwrap().with_type::<Document>();
    within(a.insert_one(doc! {"_id": 1})).await.unwrap();
    within(a.create_index(IndexModel::builder().keys(doc! {"x": 1}).build()))
        .await
        .unwrap();
    within(a.drop_index("x_1")).await.unwrap();
    within(
        db.run_command(doc! {"collMod": "a", "changeStreamPreAndPostImages": {"enabled": false}}),
    )
    .await
    .unwrap();
    within(db.collection::<Document>("b").insert_one(doc! {"_id": 2}))
        .await
        .unwrap();
    within(
        client
            .database("admin")
            .run_command(doc! {"renameCollection": "app.a", "to": "app.b", "dropTarget": true}),
    )
    .await
    .unwrap();
    within(db.collection::<Document>("b").drop()).await.unwrap();
    within(
        client
            .database("other")
            .collection::<Document>("c")
            .insert_one(doc! {"_id": 3}),
    )
    .await
    .unwrap();
    within(client.database("other").drop()).await.unwrap();

    let events = take(&mut expanded, 13).await;
    assert_eq!(
        kinds(&events),
        [
            "create",
            "insert",
            "createIndexes",
            "dropIndexes",
            "modify",
            "create",
            "insert",
            "rename",
            "drop",
            "create",
            "insert",
            "drop",
            "dropDatabase",
        ]
    );
    let uuid = |e: &Document| match e.get("collectionUUID") {
        Some(Bson::Binary(b)) => Some(b.bytes.clone()),
        _ => None,
    };
    let a_uuid = uuid(&events[0]).expect("create has collectionUUID");
    assert_eq!(
        events[0].get_document("operationDescription").unwrap(),
        &doc! {
            "changeStreamPreAndPostImages": {"enabled": true},
            "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
        }
    );
    assert_eq!(
        uuid(&events[1]).as_ref(),
        Some(&a_uuid),
        "CRUD events carry it too"
    );
    let index = events[2].get_document("operationDescription").unwrap();
    let specs = index.get_array("indexes").unwrap();
    assert_eq!(
        specs[0].as_document().unwrap().get_str("name").unwrap(),
        "x_1"
    );
    assert_eq!(
        events[3]
            .get_document("operationDescription")
            .unwrap()
            .get_array("indexes")
            .unwrap()[0]
            .as_document()
            .unwrap()
            .get_document("key")
            .unwrap(),
        &doc! {"x": 1}
    );
    assert_eq!(
        events[4].get_document("operationDescription").unwrap(),
        &doc! {"changeStreamPreAndPostImages": {"enabled": false}}
    );
    assert_eq!(
        events[4].get_document("stateBeforeChange").unwrap(),
        &doc! {"collectionOptions": {"changeStreamPreAndPostImages": {"enabled": true}}}
    );
    let b_uuid = uuid(&events[5]).unwrap();
    let rename = &events[7];
    assert_eq!(
        rename.get_document("ns").unwrap(),
        &doc! {"db": "app", "coll": "a"}
    );
    assert_eq!(
        rename.get_document("to").unwrap(),
        &doc! {"db": "app", "coll": "b"}
    );
    let description = rename.get_document("operationDescription").unwrap();
    assert_eq!(
        description.get_document("to").unwrap(),
        &doc! {"db": "app", "coll": "b"}
    );
    match description.get("dropTarget") {
        Some(Bson::Binary(b)) => assert_eq!(b.bytes, b_uuid, "the dropped target's UUID"),
        other => panic!("dropTarget should be the old b's UUID, got {other:?}"),
    }
    assert_eq!(
        uuid(rename).as_ref(),
        Some(&a_uuid),
        "a rename keeps the UUID"
    );
    assert_eq!(
        uuid(&events[8]).as_ref(),
        Some(&a_uuid),
        "the renamed collection is dropped"
    );
    assert_eq!(events[12].get_str("operationType").unwrap(), "dropDatabase");
    assert!(!events[12].contains_key("collectionUUID"));

    let events = take(&mut plain, 7).await;
    assert_eq!(
        kinds(&events),
        [
            "insert",
            "insert",
            "rename",
            "drop",
            "insert",
            "drop",
            "dropDatabase"
        ]
    );
    assert!(events.iter().all(|e| !e.contains_key("collectionUUID")));
    assert!(!events[2].contains_key("operationDescription"));
    assert_eq!(
        events[2].get_document("to").unwrap(),
        &doc! {"db": "app", "coll": "b"}
    );

    let events = take(&mut on_a, 3).await;
    assert_eq!(kinds(&events), ["insert", "rename", "invalidate"]);
}
