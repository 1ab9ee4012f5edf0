//! Change streams through the official driver: every event kind on collection, database and
//! cluster streams, `$match`/`$project`, full documents and pre-images, and the raw wire
//! contract (`postBatchResumeToken`, `getMore` awaiting with `maxTimeMS`, error codes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use keel_testkit::TestServer;
use mongodb::bson::{Bson, Document, doc};
use mongodb::change_stream::ChangeStream;
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
use mongodb::options::{FullDocumentBeforeChangeType, FullDocumentType};
use mongodb::{Client, Database};
use support::raw::Raw;
use support::{code, fast_options, next_event, replica_set, within};

async fn rs() -> (TestServer, Client) {
    replica_set(1).await
}

async fn next(s: &mut ChangeStream<ChangeStreamEvent<Document>>) -> ChangeStreamEvent<Document> {
    next_event(s).await
}

fn ops(events: &[ChangeStreamEvent<Document>]) -> Vec<OperationType> {
    events.iter().map(|e| e.operation_type.clone()).collect()
}

#[tokio::test]
async fn collection_stream_reports_every_event_kind_then_invalidates() {
    let (_server, client) = rs().await;
    let c = client.database("app").collection::<Document>("users");
    let mut stream = c.watch().await.unwrap();
    let mut lookup = c
        .watch()
        .full_document(FullDocumentType::UpdateLookup)
        .await
        .unwrap();
    c.insert_one(doc! {"_id": 1, "a": {"b": 1}, "c": 1})
        .await
        .unwrap();
    c.update_one(
        doc! {"_id": 1},
        doc! {"$set": {"a.b": 2}, "$unset": {"c": ""}},
    )
    .await
    .unwrap();
    c.replace_one(doc! {"_id": 1}, doc! {"whole": true})
        .await
        .unwrap();
    c.delete_one(doc! {"_id": 1}).await.unwrap();
    // Another collection's changes are not this stream's.
    client
        .database("app")
        .collection::<Document>("other")
        .insert_one(doc! {"x": 1})
        .await
        .unwrap();
    c.drop().await.unwrap();

    let mut events = Vec::new();
    for _ in 0..6 {
        events.push(next(&mut stream).await);
    }
    assert_eq!(
        ops(&events),
        [
            OperationType::Insert,
            OperationType::Update,
            OperationType::Replace,
            OperationType::Delete,
            OperationType::Drop,
            OperationType::Invalidate
        ]
    );
    let times: Vec<_> = events.iter().map(|e| e.cluster_time.unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(events.iter().all(|e| e.wall_time.is_some()));
    for e in &events[..4] {
        let ns = e.ns.as_ref().unwrap();
        assert_eq!((ns.db.as_str(), ns.coll.as_deref()), ("app", Some("users")));
        assert_eq!(e.document_key, Some(doc! {"_id": 1}));
    }
    assert_eq!(
        events[0].full_document,
        Some(doc! {"_id": 1, "a": {"b": 1}, "c": 1})
    );
    let desc = events[1].update_description.as_ref().unwrap();
    assert_eq!(desc.updated_fields, doc! {"a.b": 2});
    assert_eq!(desc.removed_fields, vec!["c".to_owned()]);
    assert_eq!(
        events[1].full_document, None,
        "default: no document on update"
    );
    assert_eq!(
        events[2].full_document,
        Some(doc! {"_id": 1, "whole": true})
    );
    assert!(events[5].ns.is_none() && events[5].document_key.is_none());
    assert!(
        within(stream.next()).await.is_none(),
        "closed after invalidate"
    );
    assert!(!stream.is_alive());

    // updateLookup: the document as it is when the event is returned (deleted by now).
    let _insert = next(&mut lookup).await;
    let update = next(&mut lookup).await;
    assert_eq!(update.operation_type, OperationType::Update);
    assert_eq!(
        update.full_document, None,
        "looked up after the delete: null"
    );
}

#[tokio::test]
async fn database_and_cluster_streams_see_their_scope() {
    let (_server, client) = rs().await;
    let a = client.database("a");
    let mut db_stream = a.watch().await.unwrap();
    let mut cluster = client.watch().await.unwrap();
    a.collection::<Document>("x")
        .insert_one(doc! {"_id": 1})
        .await
        .unwrap();
    client
        .database("b")
        .collection::<Document>("y")
        .insert_one(doc! {"_id": 2})
        .await
        .unwrap();
    a.collection::<Document>("z")
        .insert_one(doc! {"_id": 3})
        .await
        .unwrap();
    a.drop().await.unwrap();
    client
        .database("b")
        .collection::<Document>("y")
        .insert_one(doc! {"_id": 4})
        .await
        .unwrap();

    let mut db_events = Vec::new();
    for _ in 0..6 {
        db_events.push(next(&mut db_stream).await);
    }
    assert_eq!(
        ops(&db_events),
        [
            OperationType::Insert,
            OperationType::Insert,
            OperationType::Drop,
            OperationType::Drop,
            OperationType::DropDatabase,
            OperationType::Invalidate
        ]
    );
    let colls: Vec<_> = db_events[..2]
        .iter()
        .map(|e| e.ns.as_ref().unwrap().coll.clone().unwrap())
        .collect();
    assert_eq!(colls, ["x", "z"]);
    let dropped = db_events[4].ns.as_ref().unwrap();
    assert_eq!((dropped.db.as_str(), dropped.coll.as_deref()), ("a", None));
    assert!(within(db_stream.next()).await.is_none());

    let mut cluster_events = Vec::new();
    for _ in 0..7 {
        cluster_events.push(next(&mut cluster).await);
    }
    assert_eq!(
        ops(&cluster_events),
        [
            OperationType::Insert,
            OperationType::Insert,
            OperationType::Insert,
            OperationType::Drop,
            OperationType::Drop,
            OperationType::DropDatabase,
            OperationType::Insert
        ],
        "a cluster stream lives on after dropDatabase"
    );
    assert!(cluster.is_alive());
}

#[tokio::test]
async fn pipeline_stages_filter_and_shape_events() {
    let (_server, client) = rs().await;
    let c = client.database("app").collection::<Document>("p");
    let mut stream = c
        .watch()
        .pipeline([
            doc! {"$match": {"operationType": "insert", "fullDocument.keep": true}},
            doc! {"$project": {"operationType": 1, "fullDocument.n": 1}},
        ])
        .await
        .unwrap();
    for (n, keep) in [(1, false), (2, true), (3, false), (4, true)] {
        c.insert_one(doc! {"n": n, "keep": keep}).await.unwrap();
    }
    c.delete_many(doc! {}).await.unwrap();
    for n in [2, 4] {
        let e = next(&mut stream).await;
        assert_eq!(e.full_document, Some(doc! {"n": n}));
        assert!(e.ns.is_none(), "projected away");
    }

    // A pipeline that removes the resume token makes the stream fail, as on mongod.
    let mut broken = c
        .watch()
        .pipeline([doc! {"$project": {"_id": 0}}])
        .await
        .unwrap();
    c.insert_one(doc! {"n": 5}).await.unwrap();
    let err = within(broken.next()).await.unwrap().unwrap_err();
    assert_eq!(code(&err), Some(280));

    let db = client.database("app");
    for (pipeline, expected) in [
        (vec![doc! {"$group": {"_id": null}}], 20),
        (vec![doc! {"$changeStream": {}}], 40602),
    ] {
        let mut full = vec![doc! {"$changeStream": {}}];
        full.extend(pipeline);
        let err = db
            .run_command(doc! {"aggregate": "p", "pipeline": full, "cursor": {}})
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(expected));
    }
}

#[tokio::test]
async fn pre_and_post_images_where_enabled() {
    let (_server, client) = rs().await;
    let db = client.database("app");
    db.run_command(doc! {"create": "imaged", "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .unwrap();
    let imaged = db.collection::<Document>("imaged");
    let plain = db.collection::<Document>("plain");
    plain.insert_one(doc! {"_id": 1, "v": 1}).await.unwrap();
    imaged.insert_one(doc! {"_id": 1, "v": 1}).await.unwrap();

    let mut required = imaged
        .watch()
        .full_document(FullDocumentType::Required)
        .full_document_before_change(FullDocumentBeforeChangeType::Required)
        .await
        .unwrap();
    let mut when_available = plain
        .watch()
        .full_document(FullDocumentType::WhenAvailable)
        .full_document_before_change(FullDocumentBeforeChangeType::WhenAvailable)
        .await
        .unwrap();
    let mut must_fail = plain
        .watch()
        .full_document_before_change(FullDocumentBeforeChangeType::Required)
        .await
        .unwrap();
    for c in [&imaged, &plain] {
        c.update_one(doc! {"_id": 1}, doc! {"$inc": {"v": 1}})
            .await
            .unwrap();
        c.delete_one(doc! {"_id": 1}).await.unwrap();
    }

    let update = next(&mut required).await;
    assert_eq!(update.full_document, Some(doc! {"_id": 1, "v": 2}));
    assert_eq!(
        update.full_document_before_change,
        Some(doc! {"_id": 1, "v": 1})
    );
    let delete = next(&mut required).await;
    assert_eq!(
        delete.full_document_before_change,
        Some(doc! {"_id": 1, "v": 2})
    );

    let update = next(&mut when_available).await;
    assert_eq!(update.operation_type, OperationType::Update);
    assert_eq!(update.full_document, None);
    assert_eq!(update.full_document_before_change, None);

    let err = within(must_fail.next()).await.unwrap().unwrap_err();
    assert_eq!(code(&err), Some(47));

    // collMod turns images on for an existing collection.
    db.run_command(doc! {"collMod": "plain", "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .unwrap();
    let err = db
        .run_command(doc! {"collMod": "missing", "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(26));
}

/// `aggregate` + `getMore` by hand on the primary.
async fn open_raw(raw: &mut Raw, extra: Document) -> (i64, Document) {
    let mut stage = doc! {};
    stage.extend(extra);
    let reply = raw
        .command(doc! {"aggregate": "w", "pipeline": [{"$changeStream": stage}], "cursor": {}, "$db": "app"})
        .await;
    let cursor = reply.get_document("cursor").unwrap().clone();
    (cursor.get_i64("id").unwrap(), cursor)
}

fn get_more(id: i64, max_time_ms: i64) -> Document {
    doc! {"getMore": id, "collection": "w", "maxTimeMS": max_time_ms, "$db": "app"}
}

#[tokio::test]
async fn raw_get_more_awaits_and_moves_the_post_batch_resume_token() {
    let server = TestServer::replica_set("rs0", 1).await.unwrap();
    let mut raw = Raw::connect(server.addr()).await;
    let (id, first) = open_raw(&mut raw, doc! {}).await;
    assert!(id > 0);
    assert_eq!(first.get_str("ns").unwrap(), "app.w");
    assert!(first.get_array("firstBatch").unwrap().is_empty());
    let pbrt0 = first.get_document("postBatchResumeToken").unwrap().clone();

    // Nothing happens: the getMore waits maxTimeMS, then answers an empty batch.
    let start = Instant::now();
    let idle = raw.command(get_more(id, 150)).await;
    assert!(start.elapsed() >= Duration::from_millis(140));
    let cursor = idle.get_document("cursor").unwrap();
    assert!(cursor.get_array("nextBatch").unwrap().is_empty());
    assert_eq!(cursor.get_i64("id").unwrap(), id);

    // A write elsewhere is filtered out but still moves the token past it.
    let mut writer = Raw::connect(server.addr()).await;
    writer
        .command(doc! {"insert": "elsewhere", "documents": [{"a": 1}], "$db": "app"})
        .await;
    let moved = raw.command(get_more(id, 50)).await;
    let pbrt1 = moved
        .get_document("cursor")
        .unwrap()
        .get_document("postBatchResumeToken")
        .unwrap()
        .clone();
    assert_ne!(pbrt0, pbrt1);

    // A waiting getMore returns as soon as an event arrives, well before maxTimeMS.
    raw.send(&get_more(id, 20_000), 0).await;
    let start = Instant::now();
    writer
        .command(doc! {"insert": "w", "documents": [{"_id": 7}], "$db": "app"})
        .await;
    let reply = within(raw.receive()).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    let cursor = reply.get_document("cursor").unwrap();
    let batch = cursor.get_array("nextBatch").unwrap();
    assert_eq!(batch.len(), 1);
    let event = batch[0].as_document().unwrap();
    assert_eq!(event.get_str("operationType").unwrap(), "insert");
    // The batch reached the present, so its token is at or after the event's (tokens are
    // fixed-width hex, ordered as strings).
    let pbrt = cursor.get_document("postBatchResumeToken").unwrap();
    let event_token = event.get_document("_id").unwrap();
    assert!(pbrt.get_str("_data").unwrap() >= event_token.get_str("_data").unwrap());
    assert!(reply.get_timestamp("operationTime").is_ok());

    // A batch size cuts the batch; the token is then the last event's.
    for i in 0..3 {
        writer
            .command(doc! {"insert": "w", "documents": [{"i": i}], "$db": "app"})
            .await;
    }
    let two = raw
        .command(doc! {"getMore": id, "collection": "w", "batchSize": 2, "$db": "app"})
        .await;
    let cursor = two.get_document("cursor").unwrap();
    let batch = cursor.get_array("nextBatch").unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(
        cursor.get_document("postBatchResumeToken").unwrap(),
        batch[1].as_document().unwrap().get_document("_id").unwrap(),
        "a cut batch's token is its last event's"
    );
    let wrong_ns = raw
        .command(doc! {"getMore": id, "collection": "other", "$db": "app"})
        .await;
    assert_eq!(wrong_ns.get_i32("code").unwrap(), 13);
    let killed = raw
        .command(doc! {"killCursors": "w", "cursors": [id], "$db": "app"})
        .await;
    assert_eq!(
        killed.get_array("cursorsKilled").unwrap(),
        &vec![Bson::Int64(id)]
    );
    let gone = raw.command(get_more(id, 10)).await;
    assert_eq!(gone.get_i32("code").unwrap(), 43);
}

#[tokio::test]
async fn bad_change_stream_requests_get_mongod_errors() {
    let standalone = TestServer::start().await.unwrap();
    let client = Client::with_options(fast_options(&standalone.uri()).await).unwrap();
    let err = client
        .database("app")
        .collection::<Document>("c")
        .watch()
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(40573));

    let (_server, client) = rs().await;
    let app: Database = client.database("app");
    let cases = [
        (
            doc! {"aggregate": 1, "pipeline": [{"$changeStream": {"allChangesForCluster": true}}], "cursor": {}},
            72,
        ),
        (
            doc! {"aggregate": "c", "pipeline": [{"$changeStream": {"fullDocument": "sometimes"}}], "cursor": {}},
            2,
        ),
        (
            doc! {"aggregate": "c", "pipeline": [{"$changeStream": {"bogus": 1}}], "cursor": {}},
            40415,
        ),
        (
            doc! {"aggregate": "c", "pipeline": [{"$changeStream": {"resumeAfter": {"_data": "nonsense"}}}], "cursor": {}},
            9,
        ),
        (
            doc! {"aggregate": "c", "pipeline": [{"$match": {}}, {"$changeStream": {}}], "cursor": {}},
            40602,
        ),
    ];
    for (cmd, expected) in cases {
        let err = app.run_command(cmd.clone()).await.unwrap_err();
        assert_eq!(code(&err), Some(expected), "{cmd}");
    }
    let err = client
        .database("admin")
        .collection::<Document>("c")
        .watch()
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(73));
}
