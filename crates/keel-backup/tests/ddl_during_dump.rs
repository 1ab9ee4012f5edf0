//! Collection and index changes made during a dump are replayed on restore: a collection
//! created (explicitly with options, and implicitly), renamed, dropped, created and dropped again,
//! an index created and dropped, a collection's options changed, a database dropped — all while
//! the dump runs — and the restored deployment equals the source at the end of the backup:
//! the same collections, options, indexes and documents. Runs against a keel-testkit replica
//! set, or `KEEL_TEST_URI` when that is a replica set of MongoDB 6.0+.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_backup::{Restore, verify};
use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use support::cluster::{
    batch_by_batch_backup, keel, replica_set, scratch, state, when_namespace_reaches,
};

async fn seed(client: &mongodb::Client, db: &str, two: &str) {
    for name in [db, two] {
        let _ = client.database(name).drop().await;
    }
    let database = client.database(db);
    let items = database.collection::<Document>("items");
    items
        .insert_many((0..500).map(|i| doc! {"_id": i, "n": i, "tag": "x"}))
        .await
        .unwrap();
    items
        .create_index(IndexModel::builder().keys(doc! {"n": 1}).build())
        .await
        .unwrap();
    // Dumped before `items` (names are listed in order): dropped and renamed after their dump.
    for name in ["a_dropped", "a_renamed"] {
        database
            .collection::<Document>(name)
            .insert_many((0..10).map(|i| doc! {"_id": i}))
            .await
            .unwrap();
    }
    // Dumped after `items`: renamed and dropped before their dump.
    let other = database.collection::<Document>("other");
    other
        .insert_many((0..50).map(|i| doc! {"_id": i, "v": i}))
        .await
        .unwrap();
    other
        .create_index(IndexModel::builder().keys(doc! {"v": -1}).build())
        .await
        .unwrap();
    database
        .collection::<Document>("victim")
        .insert_many((0..10).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    client
        .database(two)
        .collection::<Document>("gone")
        .insert_one(doc! {"_id": 1})
        .await
        .unwrap();
}

async fn rename(client: &mongodb::Client, db: &str, from: &str, to: &str) {
    client
        .database("admin")
        .run_command(doc! {"renameCollection": format!("{db}.{from}"), "to": format!("{db}.{to}")})
        .await
        .unwrap();
}

/// DDL of every kind while `items` is being dumped.
async fn ddl_during_the_dump(client: &mongodb::Client, db: &str, two: &str) {
    let database = client.database(db);
    database
        .run_command(doc! {"create": "fresh", "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .unwrap();
    database
        .collection::<Document>("fresh")
        .insert_many((0..5).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    database
        .collection::<Document>("implicit")
        .insert_one(doc! {"_id": 1})
        .await
        .unwrap();
    let items = database.collection::<Document>("items");
    items
        .create_index(IndexModel::builder().keys(doc! {"tag": 1}).build())
        .await
        .unwrap();
    items.drop_index("n_1").await.unwrap();
    database
        .run_command(doc! {"collMod": "items", "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .unwrap();
    items
        .update_one(doc! {"_id": 3}, doc! {"$set": {"n": -3}})
        .await
        .unwrap();
    rename(client, db, "a_renamed", "z_renamed").await;
    rename(client, db, "other", "moved").await;
    database
        .collection::<Document>("moved")
        .insert_one(doc! {"_id": 1000, "v": 1000})
        .await
        .unwrap();
    database
        .collection::<Document>("a_dropped")
        .drop()
        .await
        .unwrap();
    database
        .collection::<Document>("victim")
        .drop()
        .await
        .unwrap();
    let ephemeral = database.collection::<Document>("ephemeral");
    ephemeral.insert_one(doc! {"_id": 1}).await.unwrap();
    ephemeral.drop().await.unwrap();
    client.database(two).drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_during_the_dump_is_restored_as_at_the_end_point() {
    let Some((_rs, uri)) = replica_set(10_000).await else {
        return;
    };
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let wire = client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
        .unwrap()
        .get_i32("maxWireVersion")
        .unwrap_or(0);
    if wire < 17 {
        println!(
            "SKIPPED: the server is older than MongoDB 6.0 and cannot report DDL in change streams"
        );
        return;
    }
    let db = format!("kb_ddl_{}", std::process::id());
    let two = format!("{db}_two");
    seed(&client, &db, &two).await;
    let keel = keel(&uri).await;
    let dir = scratch("keel-backup-ddl", "ddl");

    let (manifest, _, changed) = when_namespace_reaches(
        &format!("{db}.items"),
        100,
        batch_by_batch_backup(&keel, vec![db.clone(), two.clone()], &dir),
        || ddl_during_the_dump(&client, &db, &two),
    )
    .await;
    let manifest = manifest.unwrap();
    assert!(changed, "the DDL happened while items was being dumped");
    assert!(manifest.ddl_captured, "a 6.0+ server reports DDL");
    verify(&dir).unwrap();
    let dumped: Vec<&str> = manifest
        .namespaces
        .iter()
        .map(|n| n.collection.as_str())
        .collect();
    assert!(
        !dumped.contains(&"a_renamed") && !dumped.contains(&"a_dropped"),
        "dumps of collections renamed or dropped since are left out: {dumped:?}"
    );

    let restored = format!("{db}_r");
    let restored_two = format!("{db}_r_two");
    Restore::from(&dir)
        .drop(true)
        .rename(two.clone(), restored_two.clone())
        .rename(db.clone(), restored.clone())
        .into(&keel)
        .await
        .unwrap();
    let source = state(&client, &db).await;
    let names: Vec<&str> = source.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        ["fresh", "implicit", "items", "moved", "z_renamed"],
        "the source's end state"
    );
    assert_eq!(state(&client, &restored).await, source);
    assert!(
        state(&client, &restored_two).await.is_empty(),
        "the dropped database stays dropped"
    );
    keel.shutdown().await;
}
