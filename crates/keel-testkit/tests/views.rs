//! Views, capped collections and validators through the official Rust driver: `create` with
//! `viewOn`/`pipeline`, `capped`/`size`/`max` and `validator`/`validationLevel`/
//! `validationAction`, as `listCollections` reports them and as reads and writes see them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use support::{Fixture, code, fast_options, within};

async fn list(db: &mongodb::Database) -> Vec<Document> {
    let cursor = db
        .run_cursor_command(doc! {"listCollections": 1})
        .await
        .unwrap();
    cursor.try_collect().await.unwrap()
}

fn entry<'a>(listing: &'a [Document], name: &str) -> Option<&'a Document> {
    listing.iter().find(|d| d.get_str("name") == Ok(name))
}

/// The code and `errInfo` of a single write error.
fn write_error(e: &mongodb::error::Error) -> (i32, Option<Document>) {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => (w.code, w.details.clone()),
        other => panic!("expected a write error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_view_runs_its_pipeline_over_its_source_and_refuses_writes() {
    let f = Fixture::new().await;
    let db = f.client.database("views");
    let src = db.collection::<Document>("orders");
    src.insert_many((1..=6).map(|i| doc! {"_id": i, "qty": i * 10, "secret": "x"}))
        .await
        .unwrap();
    let pipeline = vec![
        doc! {"$match": {"qty": {"$gte": 30}}},
        doc! {"$project": {"secret": 0}},
    ];
    db.run_command(doc! {"create": "big", "viewOn": "orders", "pipeline": pipeline.clone()})
        .await
        .unwrap();

    let listing = list(&db).await;
    let view = entry(&listing, "big").expect("the view is listed");
    assert_eq!(view.get_str("type").unwrap(), "view");
    assert_eq!(
        view.get_document("options").unwrap(),
        &doc! {"viewOn": "orders", "pipeline": pipeline}
    );
    assert_eq!(view.get_document("info").unwrap(), &doc! {"readOnly": true});
    let views = entry(&listing, "system.views").expect("system.views is listed, as on mongod");
    assert_eq!(views.get_str("type").unwrap(), "collection");
    let names: Vec<&str> = listing.iter().map(|d| d.get_str("name").unwrap()).collect();
    assert_eq!(names, ["big", "orders", "system.views"], "sorted by name");

    // find: the view's pipeline, then the query's filter, sort, skip and limit.
    let big = db.collection::<Document>("big");
    let found: Vec<Document> = big
        .find(doc! {"qty": {"$lt": 60}})
        .sort(doc! {"qty": -1})
        .limit(2)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![doc! {"_id": 5, "qty": 50}, doc! {"_id": 4, "qty": 40}]
    );
    // aggregate: the view's stages run first.
    let total: Vec<Document> = big
        .aggregate([doc! {"$group": {"_id": null, "n": {"$sum": 1}}}])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(total[0].get_i32("n").unwrap(), 4);
    assert_eq!(big.count_documents(doc! {}).await.unwrap(), 4);
    assert_eq!(big.estimated_document_count().await.unwrap(), 4);

    // A view of a view resolves down to the collection.
    db.run_command(
        doc! {"create": "bigger", "viewOn": "big", "pipeline": [{"$match": {"qty": {"$gte": 50}}}]},
    )
    .await
    .unwrap();
    let ids: Vec<Bson> = db
        .collection::<Document>("bigger")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect::<Vec<Document>>()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.get("_id").unwrap().clone())
        .collect();
    assert_eq!(ids, vec![Bson::Int32(5), Bson::Int32(6)]);

    // Writes, indexes and listIndexes on a view: CommandNotSupportedOnView.
    let err = big.insert_one(doc! {"qty": 1}).await.unwrap_err();
    assert_eq!(code(&err), Some(166), "{err}");
    assert!(
        err.to_string()
            .contains("views.big is a view, not a collection"),
        "{err}"
    );
    let err = big
        .update_one(doc! {}, doc! {"$set": {"qty": 1}})
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(166));
    let err = big.delete_many(doc! {}).await.unwrap_err();
    assert_eq!(code(&err), Some(166));
    let err = big
        .create_index(mongodb::IndexModel::builder().keys(doc! {"qty": 1}).build())
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(166));
    let err = big.list_index_names().await.unwrap_err();
    assert_eq!(code(&err), Some(166));
    // Nor can system.views be written directly, nor a name be taken twice.
    let err = db
        .collection::<Document>("system.views")
        .insert_one(doc! {"_id": "views.v", "viewOn": "orders", "pipeline": []})
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(73), "{err}");
    for taken in ["big", "orders"] {
        let err = db
            .run_command(doc! {"create": taken, "viewOn": "orders"})
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(48), "{taken}: {err}");
    }
    let err = db.run_command(doc! {"create": "big"}).await.unwrap_err();
    assert_eq!(
        code(&err),
        Some(48),
        "a collection cannot take a view's name"
    );
    let err = db
        .run_command(doc! {"create": "v2", "viewOn": "orders", "pipeline": [{"$nope": 1}]})
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        Some(40324),
        "an unknown stage is refused at create: {err}"
    );

    // Dropping the view leaves its source.
    big.drop().await.unwrap();
    let listing = list(&db).await;
    assert!(entry(&listing, "big").is_none());
    assert_eq!(src.count_documents(doc! {}).await.unwrap(), 6);
}

#[tokio::test]
async fn a_capped_collection_keeps_its_newest_documents() {
    let f = Fixture::new().await;
    let db = f.client.database("capped");
    db.run_command(doc! {"create": "log", "capped": true, "size": 100_000, "max": 3})
        .await
        .unwrap();
    let log = db.collection::<Document>("log");
    for i in 0..5 {
        log.insert_one(doc! {"_id": i}).await.unwrap();
    }
    let ids: Vec<Document> = log
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, vec![doc! {"_id": 2}, doc! {"_id": 3}, doc! {"_id": 4}]);
    let listing = list(&db).await;
    assert_eq!(
        entry(&listing, "log")
            .unwrap()
            .get_document("options")
            .unwrap(),
        &doc! {"capped": true, "size": 100_000, "max": 3}
    );

    // Capped by bytes only: 1 KB documents in 4 KB.
    db.run_command(doc! {"create": "small", "capped": true, "size": 4096})
        .await
        .unwrap();
    let small = db.collection::<Document>("small");
    for i in 0..10 {
        small
            .insert_one(doc! {"_id": i, "pad": "x".repeat(1000)})
            .await
            .unwrap();
    }
    let kept: Vec<Document> = small
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let bytes: usize = kept
        .iter()
        .map(|d| mongodb::bson::to_vec(d).unwrap().len())
        .sum();
    assert!(bytes <= 4096, "{bytes} bytes kept");
    assert_eq!(
        kept.last().unwrap().get_i32("_id").unwrap(),
        9,
        "the newest stays"
    );
    assert_eq!(kept.len(), 4);

    let err = db
        .run_command(doc! {"create": "nosize", "capped": true})
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(72), "{err}");
}

#[tokio::test]
async fn a_validator_refuses_documents_that_do_not_match() {
    let f = Fixture::new().await;
    let db = f.client.database("validated");
    let rule = doc! {"qty": {"$gte": 0}, "name": {"$exists": true}};
    db.run_command(doc! {"create": "items", "validator": rule.clone()})
        .await
        .unwrap();
    let items = db.collection::<Document>("items");
    items
        .insert_one(doc! {"_id": 1, "qty": 5, "name": "a"})
        .await
        .unwrap();

    let err = items
        .insert_one(doc! {"_id": 2, "qty": -1, "name": "b"})
        .await
        .unwrap_err();
    let (code, info) = write_error(&err);
    assert_eq!(code, 121);
    assert_eq!(
        info.unwrap().get("failingDocumentId"),
        Some(&Bson::Int32(2))
    );
    let err = items
        .update_one(doc! {"_id": 1}, doc! {"$set": {"qty": -5}})
        .await
        .unwrap_err();
    assert_eq!(write_error(&err).0, 121);
    let err = items
        .update_one(doc! {"_id": 9}, doc! {"$set": {"qty": -5}})
        .upsert(true)
        .await
        .unwrap_err();
    assert_eq!(write_error(&err).0, 121, "an upsert is validated too");
    assert_eq!(items.count_documents(doc! {}).await.unwrap(), 1);
    let listing = list(&db).await;
    assert_eq!(
        entry(&listing, "items")
            .unwrap()
            .get_document("options")
            .unwrap(),
        &doc! {"validator": rule, "validationLevel": "strict", "validationAction": "error"}
    );

    // validationAction "warn" accepts the document (mongod only logs it).
    db.run_command(
        doc! {"create": "lenient", "validator": {"qty": {"$gte": 0}}, "validationAction": "warn"},
    )
    .await
    .unwrap();
    db.collection::<Document>("lenient")
        .insert_one(doc! {"qty": -1})
        .await
        .unwrap();

    let err = db
        .run_command(doc! {"create": "schema", "validator": {"$jsonSchema": {"required": ["a"]}}})
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), Some(115), "{err}");
    assert!(err.to_string().contains("$jsonSchema"), "{err}");
    let err = db
        .run_command(doc! {"create": "expr", "validator": {"$expr": {"$gt": ["$a", 1]}}})
        .await
        .unwrap_err();
    assert_eq!(support::code(&err), Some(115), "{err}");
}

#[tokio::test]
async fn views_and_collection_options_survive_a_new_server_on_the_data_dir() {
    let dir = std::env::temp_dir().join(format!(
        "keel-testkit-views-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let before = {
        let server = keel_testkit::TestServer::builder()
            .data_dir(&dir)
            .start()
            .await
            .unwrap();
        let client = mongodb::Client::with_options(fast_options(&server.uri()).await).unwrap();
        let db = client.database("kept");
        db.run_command(doc! {"create": "log", "capped": true, "size": 8192, "max": 10})
            .await
            .unwrap();
        db.run_command(doc! {"create": "items", "validator": {"qty": {"$gte": 0}}})
            .await
            .unwrap();
        db.run_command(
            doc! {"create": "v", "viewOn": "items", "pipeline": [{"$match": {"qty": 1}}]},
        )
        .await
        .unwrap();
        list(&db).await
    };
    let server = keel_testkit::TestServer::builder()
        .data_dir(&dir)
        .start()
        .await
        .unwrap();
    let client = mongodb::Client::with_options(fast_options(&server.uri()).await).unwrap();
    let db = client.database("kept");
    let after = within(list(&db)).await;
    // UUIDs are new after a reload (the journal does not keep them).
    let strip = |l: &[Document]| -> Vec<Document> {
        l.iter()
            .map(|d| {
                let mut d = d.clone();
                if let Ok(info) = d.get_document_mut("info") {
                    info.remove("uuid");
                }
                d
            })
            .collect()
    };
    assert_eq!(strip(&after), strip(&before));
    assert_eq!(after.len(), 4, "log, items, system.views and v: {after:?}");
    let err = db
        .collection::<Document>("items")
        .insert_one(doc! {"qty": -1})
        .await
        .unwrap_err();
    assert_eq!(
        write_error(&err).0,
        121,
        "the validator is enforced on the new server"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_expanded_change_stream_reports_a_view_and_a_capped_collection_being_created() {
    use futures_util::StreamExt;
    let server = keel_testkit::TestServer::builder()
        .replica_set("rs0", 1)
        .start()
        .await
        .unwrap();
    let client = mongodb::Client::with_options(fast_options(&server.uri()).await).unwrap();
    let mut stream = within(client.watch().show_expanded_events(true))
        .await
        .unwrap()
        .with_type::<Document>();
    let db = client.database("app");
    db.run_command(doc! {"create": "log", "capped": true, "size": 4096})
        .await
        .unwrap();
    db.run_command(doc! {"create": "v", "viewOn": "log", "pipeline": [{"$match": {"a": 1}}]})
        .await
        .unwrap();
    db.collection::<Document>("log")
        .insert_one(doc! {"_id": 1})
        .await
        .unwrap();
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(within(stream.next()).await.unwrap().unwrap());
    }
    let summary: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.get_str("operationType").unwrap(),
                e.get_document("ns").unwrap().get_str("coll").unwrap(),
            )
        })
        .collect();
    // The system.views insert behind the view is not reported (no system.* namespace is).
    assert_eq!(
        summary,
        [("create", "log"), ("create", "v"), ("insert", "log")]
    );
    let described = |i: usize| {
        events[i]
            .get_document("operationDescription")
            .unwrap()
            .clone()
    };
    let capped = described(0);
    assert_eq!(capped.get_bool("capped"), Ok(true));
    assert_eq!(capped.get("size"), Some(&Bson::Int32(4096)));
    assert_eq!(
        described(1),
        doc! {"viewOn": "log", "pipeline": [{"$match": {"a": 1}}]}
    );
}
