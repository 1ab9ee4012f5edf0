//! Handshake, admin, index and diagnostic commands through the official Rust driver, and the
//! error replies for unknown commands and bad arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::TryStreamExt;
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use support::{Fixture, code};

#[tokio::test]
async fn hello_and_is_master_match_a_7_0_standalone() {
    let f = Fixture::new().await;
    let admin = f.client.database("admin");
    let hello = admin
        .run_command(doc! {"hello": 1, "helloOk": true})
        .await
        .unwrap();
    assert!(hello.get_bool("isWritablePrimary").unwrap());
    assert!(hello.get_bool("helloOk").unwrap());
    assert_eq!(hello.get_i32("maxWireVersion").unwrap(), 21);
    assert_eq!(hello.get_i32("minWireVersion").unwrap(), 0);
    assert_eq!(
        hello.get_i32("maxBsonObjectSize").unwrap(),
        16 * 1024 * 1024
    );
    assert_eq!(hello.get_i32("maxMessageSizeBytes").unwrap(), 48_000_000);
    assert_eq!(hello.get_i32("maxWriteBatchSize").unwrap(), 100_000);
    assert_eq!(hello.get_i32("logicalSessionTimeoutMinutes").unwrap(), 30);
    assert!(hello.get_i64("connectionId").unwrap() > 0);
    assert!(hello.get_datetime("localTime").is_ok());
    assert!(
        !hello.contains_key("setName"),
        "a standalone has no replica set name"
    );
    let legacy = admin.run_command(doc! {"isMaster": 1}).await.unwrap();
    assert!(legacy.get_bool("ismaster").unwrap());
    assert!(!legacy.contains_key("helloOk"));
}

#[tokio::test]
async fn ping_build_info_end_sessions_and_session_fields() {
    let f = Fixture::new().await;
    let admin = f.client.database("admin");
    assert_eq!(
        admin
            .run_command(doc! {"ping": 1})
            .await
            .unwrap()
            .get_f64("ok")
            .unwrap(),
        1.0
    );
    let info = admin.run_command(doc! {"buildInfo": 1}).await.unwrap();
    assert_eq!(info.get_str("version").unwrap(), "7.0.0");
    assert_eq!(info.get_array("versionArray").unwrap()[0], Bson::Int32(7));
    let lsid = doc! {"id": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16] }};
    let ping = admin
        .run_command(doc! {"ping": 1, "lsid": lsid.clone(), "$clusterTime": {"clusterTime": mongodb::bson::Timestamp {time: 1, increment: 1}, "signature": {"hash": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] }, "keyId": 0i64}}})
        .await
        .unwrap();
    assert_eq!(ping.get_f64("ok").unwrap(), 1.0);
    let ended = admin
        .run_command(doc! {"endSessions": [lsid]})
        .await
        .unwrap();
    assert_eq!(ended.get_f64("ok").unwrap(), 1.0);
    // Sessions through the driver API carry lsid on every command.
    let mut session = f.client.start_session().await.unwrap();
    f.coll("s")
        .insert_one(doc! {"x": 1})
        .session(&mut session)
        .await
        .unwrap();
}

#[tokio::test]
async fn databases_and_collections_lifecycle() {
    let f = Fixture::new().await;
    let db = f.client.database("life");
    db.create_collection("a").await.unwrap();
    let err = db.create_collection("a").await.unwrap_err();
    assert_eq!(code(&err), Some(48));
    db.collection::<Document>("b")
        .insert_one(doc! {"x": 1})
        .await
        .unwrap();
    let mut names = db.list_collection_names().await.unwrap();
    names.sort();
    assert_eq!(names, vec!["a", "b"]);
    let specs: Vec<_> = db
        .list_collections()
        .filter(doc! {"name": "b"})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(specs.len(), 1);
    let raw = db.run_command(doc! {"listCollections": 1}).await.unwrap();
    let cursor = raw.get_document("cursor").unwrap();
    assert_eq!(cursor.get_str("ns").unwrap(), "life.$cmd.listCollections");
    let first = cursor.get_array("firstBatch").unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    assert_eq!(first.get_str("type").unwrap(), "collection");
    assert!(
        first
            .get_document("info")
            .unwrap()
            .get_binary_generic("uuid")
            .is_ok()
            || first.get_document("info").unwrap().get("uuid").is_some()
    );
    assert_eq!(
        first
            .get_document("idIndex")
            .unwrap()
            .get_str("name")
            .unwrap(),
        "_id_"
    );

    assert!(
        f.client
            .list_database_names()
            .await
            .unwrap()
            .contains(&"life".to_owned())
    );
    let dbs = f
        .client
        .database("admin")
        .run_command(doc! {"listDatabases": 1})
        .await
        .unwrap();
    assert!(dbs.get_i64("totalSize").is_ok());
    let entry = dbs.get_array("databases").unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    assert!(entry.get_bool("empty").is_ok() && entry.get_i64("sizeOnDisk").is_ok());

    let dropped = db.run_command(doc! {"drop": "a"}).await.unwrap();
    assert_eq!(dropped.get_str("ns").unwrap(), "life.a");
    assert_eq!(dropped.get_i32("nIndexesWas").unwrap(), 1);
    // MongoDB 7.0: dropping a missing collection succeeds.
    db.collection::<Document>("never").drop().await.unwrap();
    db.drop().await.unwrap();
    assert!(
        !f.client
            .list_database_names()
            .await
            .unwrap()
            .contains(&"life".to_owned())
    );
}

#[tokio::test]
async fn unique_indexes_are_enforced() {
    let f = Fixture::new().await;
    let c = f.coll("idx");
    let model = IndexModel::builder()
        .keys(doc! {"email": 1})
        .options(IndexOptions::builder().unique(true).build())
        .build();
    let created = c.create_index(model).await.unwrap();
    assert_eq!(created.index_name, "email_1");
    c.insert_one(doc! {"email": "a@x"}).await.unwrap();
    let err = c.insert_one(doc! {"email": "a@x"}).await.unwrap_err();
    let ErrorKind::Write(WriteFailure::WriteError(w)) = &*err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(w.code, 11000);
    assert!(
        w.message
            .contains("index: email_1 dup key: { email: \"a@x\" }"),
        "{}",
        w.message
    );
    // An update into a duplicate is rejected too.
    c.insert_one(doc! {"email": "b@x"}).await.unwrap();
    assert!(
        c.update_one(doc! {"email": "b@x"}, doc! {"$set": {"email": "a@x"}})
            .await
            .is_err()
    );

    c.create_index(IndexModel::builder().keys(doc! {"n": -1, "m": 1}).build())
        .await
        .unwrap();
    let names = c.list_index_names().await.unwrap();
    assert_eq!(names, vec!["_id_", "email_1", "n_-1_m_1"]);
    let raw = f
        .client
        .database("testkit")
        .run_command(doc! {"listIndexes": "idx"})
        .await
        .unwrap();
    let first = raw
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()[1]
        .as_document()
        .unwrap()
        .clone();
    assert_eq!(
        first,
        doc! {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}
    );

    let again = f.client.database("testkit").run_command(doc! {"createIndexes": "idx", "indexes": [{"key": {"email": 1}, "name": "email_1", "unique": true}]}).await.unwrap();
    assert_eq!(again.get_str("note").unwrap(), "all indexes already exist");
    let conflict = f
        .client
        .database("testkit")
        .run_command(
            doc! {"createIndexes": "idx", "indexes": [{"key": {"other": 1}, "name": "email_1"}]},
        )
        .await
        .unwrap_err();
    assert_eq!(code(&conflict), Some(86));

    c.drop_index("n_-1_m_1").await.unwrap();
    let err = c.drop_index("nope").await.unwrap_err();
    assert_eq!(code(&err), Some(27));
    let err = f
        .client
        .database("testkit")
        .run_command(doc! {"dropIndexes": "idx", "index": "_id_"})
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(72));
    c.drop_indexes().await.unwrap();
    assert_eq!(c.list_index_names().await.unwrap(), vec!["_id_"]);
    let err = f.coll("nothing").list_index_names().await.unwrap_err();
    assert_eq!(code(&err), Some(26));
}

#[tokio::test]
async fn unique_index_build_fails_on_existing_duplicates() {
    let f = Fixture::new().await;
    let c = f.coll("dups");
    c.insert_many(vec![doc! {"k": 1}, doc! {"k": 1}])
        .await
        .unwrap();
    let err = f.client.database("testkit").run_command(doc! {"createIndexes": "dups", "indexes": [{"key": {"k": 1}, "name": "k_1", "unique": true}]}).await.unwrap_err();
    assert_eq!(code(&err), Some(11000));
}

#[tokio::test]
async fn server_status_counts_connections_and_operations() {
    let f = Fixture::new().await;
    let c = f.coll("stats");
    c.insert_many(vec![doc! {"a": 1}, doc! {"a": 2}])
        .await
        .unwrap();
    c.find_one(doc! {}).await.unwrap();
    c.update_one(doc! {"a": 1}, doc! {"$set": {"b": 1}})
        .await
        .unwrap();
    c.delete_one(doc! {"a": 2}).await.unwrap();
    let status = f
        .client
        .database("admin")
        .run_command(doc! {"serverStatus": 1})
        .await
        .unwrap();
    let ops = status.get_document("opcounters").unwrap();
    assert_eq!(ops.get_i64("insert").unwrap(), 2);
    assert_eq!(ops.get_i64("query").unwrap(), 1);
    assert_eq!(ops.get_i64("update").unwrap(), 1);
    assert_eq!(ops.get_i64("delete").unwrap(), 1);
    assert!(ops.get_i64("command").unwrap() >= 1);
    // One `aggregate` and one `count` are one command each, as on mongod.
    let command = ops.get_i64("command").unwrap();
    c.aggregate(vec![doc! {"$match": {}}]).await.unwrap();
    f.client
        .database(c.namespace().db.as_str())
        .run_command(doc! {"count": c.name()})
        .await
        .unwrap();
    let after = f
        .client
        .database("admin")
        .run_command(doc! {"serverStatus": 1})
        .await
        .unwrap();
    // The serverStatus asked in between is the third; a monitoring `hello` may land in
    // between too (double counting would make it five or more).
    let after = after
        .get_document("opcounters")
        .unwrap()
        .get_i64("command")
        .unwrap();
    assert!(
        (3..=4).contains(&(after - command)),
        "{} commands counted for aggregate, count and serverStatus",
        after - command
    );
    let conns = status.get_document("connections").unwrap();
    assert!(conns.get_i32("current").unwrap() >= 1);
    assert!(conns.get_i64("totalCreated").unwrap() >= 1);
    assert_eq!(status.get_str("process").unwrap(), "mongod");
}

#[tokio::test]
async fn unknown_commands_and_bad_arguments_get_clean_errors() {
    let f = Fixture::new().await;
    let db = f.client.database("testkit");
    let err = db.run_command(doc! {"frobnicate": 1}).await.unwrap_err();
    assert_eq!(code(&err), Some(59));
    let ErrorKind::Command(c) = &*err.kind else {
        panic!()
    };
    assert_eq!(c.code_name, "CommandNotFound");
    assert_eq!(c.message, "no such command: 'frobnicate'");

    for (cmd, want) in [
        (doc! {"find": 5}, 73),
        (doc! {"find": "c", "filter": 1}, 14),
        (doc! {"find": "c", "limit": -1}, 51024),
        (doc! {"find": "c", "filter": {"a": {"$frob": 1}}}, 2),
        (doc! {"find": "c", "sort": {"a": 2}}, 15975),
        (doc! {"find": "c", "projection": {"a": 1, "b": 0}}, 31254),
        (doc! {"insert": "c"}, 9),
        (doc! {"insert": "c", "documents": []}, 16),
        (doc! {"aggregate": "c", "pipeline": []}, 9),
        (doc! {"getMore": "x", "collection": "c"}, 14),
        (
            doc! {"configureFailPoint": "failCommand", "mode": "bogus"},
            13,
        ),
    ] {
        let err = db.run_command(cmd.clone()).await.unwrap_err();
        assert_eq!(code(&err), Some(want), "{cmd}: {err}");
    }
    // The connection is still fine afterwards.
    db.run_command(doc! {"ping": 1}).await.unwrap();
}
