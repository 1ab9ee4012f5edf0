//! Views, capped collections and validators through a backup and a restore: a view is dumped
//! as metadata only, as mongodump does (mongo-tools `mongodump/prepare.go`,
//! `NewIntentFromOptions`: a view gets a metadata file and no BSON file; `system.views` is
//! never dumped, `shouldSkipSystemNamespace`), and restored after its source; capped and
//! validator options come back and keep acting in the target. Plain and gzip. Runs against
//! keel-testkit, or `KEEL_TEST_URI`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_backup::{Backup, CollectionMetadata, Restore, verify};
use mongodb::bson::{Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use support::cluster::{all, any_deployment, keel, scratch, state};

/// `orders`, a view `a_view` on it (listed before its source), a view of that view, a capped
/// `log` and a validated `items`.
async fn seed(client: &mongodb::Client, db: &str) {
    let database = client.database(db);
    let _ = database.drop().await;
    database
        .collection::<Document>("orders")
        .insert_many((0..40).map(|i| doc! {"_id": i, "qty": i, "secret": "s"}))
        .await
        .unwrap();
    database
        .run_command(doc! {
            "create": "a_view",
            "viewOn": "orders",
            "pipeline": [{"$match": {"qty": {"$gte": 30}}}, {"$project": {"secret": 0}}],
        })
        .await
        .unwrap();
    database
        .run_command(doc! {"create": "a_view_of_a_view", "viewOn": "a_view", "pipeline": [{"$match": {"qty": {"$lt": 35}}}]})
        .await
        .unwrap();
    database
        .run_command(doc! {"create": "log", "capped": true, "size": 65536, "max": 5})
        .await
        .unwrap();
    let log = database.collection::<Document>("log");
    for i in 0..8 {
        log.insert_one(doc! {"_id": i, "line": format!("line {i}")})
            .await
            .unwrap();
    }
    database
        .run_command(doc! {
            "create": "items",
            "validator": {"qty": {"$gte": 0}},
            "validationLevel": "strict",
            "validationAction": "error",
        })
        .await
        .unwrap();
    database
        .collection::<Document>("items")
        .insert_many((0..10).map(|i| doc! {"_id": i, "qty": i}))
        .await
        .unwrap();
}

fn write_code(e: &mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_metadata_only_and_capped_and_validator_options_round_trip() {
    let (_server, uri) = any_deployment().await;
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db = format!("kb_views_{}", std::process::id());
    seed(&client, &db).await;
    let keel = keel(&uri).await;
    let source = state(&client, &db).await;
    let kinds: Vec<(&str, &str)> = source
        .iter()
        .map(|s| (s.0.as_str(), s.1.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a_view", "view"),
            ("a_view_of_a_view", "view"),
            ("items", "collection"),
            ("log", "collection"),
            ("orders", "collection"),
        ]
    );
    assert_eq!(source[1].4.len(), 5, "the view of a view reads 30..35");

    for gzip in [false, true] {
        let dir = scratch("keel-backup-views", if gzip { "gzip" } else { "plain" });
        let manifest = Backup::builder(keel.clone())
            .include([db.clone()])
            .to(&dir)
            .gzip(gzip)
            .run()
            .await
            .unwrap();
        verify(&dir).unwrap();
        let files: Vec<String> = std::fs::read_dir(dir.join(&db))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let ext = if gzip { "bson.gz" } else { "bson" };
        for view in ["a_view", "a_view_of_a_view"] {
            assert!(
                files.contains(&format!("{view}.metadata.json")),
                "{files:?}"
            );
            assert!(
                !files.iter().any(|f| f.starts_with(&format!("{view}.bson"))),
                "a view has no documents file: {files:?}"
            );
            let entry = manifest
                .namespaces
                .iter()
                .find(|n| n.collection == view)
                .unwrap();
            assert_eq!(entry.collection_type, "view");
            assert_eq!((entry.bson_file.as_deref(), entry.count), (None, 0));
            let text = std::fs::read_to_string(dir.join(&db).join(format!("{view}.metadata.json")))
                .unwrap();
            let metadata = CollectionMetadata::from_json(&text).unwrap();
            assert_eq!(metadata.collection_type, "view");
            assert!(metadata.indexes.is_empty());
            let listed = source.iter().find(|s| s.0 == view).unwrap();
            assert_eq!(metadata.options, listed.2, "viewOn and pipeline as listed");
        }
        for coll in ["items", "log", "orders"] {
            assert!(files.contains(&format!("{coll}.{ext}")), "{files:?}");
        }
        assert!(
            !files.iter().any(|f| f.starts_with("system.")),
            "system.views is not dumped: {files:?}"
        );

        let restored = format!("{db}_r{}", u8::from(gzip));
        let report = Restore::from(&dir)
            .drop(true)
            .rename(db.clone(), restored.clone())
            .into(&keel)
            .await
            .unwrap();
        assert_eq!(report.namespaces, 5, "{report:?}");
        assert_eq!(
            state(&client, &restored).await,
            source,
            "views read the same documents; options, indexes and documents equal"
        );
        // The options act in the target: the cap keeps 5, the validator refuses.
        let log = client.database(&restored).collection::<Document>("log");
        log.insert_one(doc! {"_id": 100}).await.unwrap();
        let kept = all(&client, &restored, "log").await;
        assert_eq!(kept.len(), 5);
        assert_eq!(kept.last().unwrap().get_i32("_id").unwrap(), 100);
        let err = client
            .database(&restored)
            .collection::<Document>("items")
            .insert_one(doc! {"qty": -1})
            .await
            .unwrap_err();
        assert_eq!(write_code(&err), Some(121), "{err}");
        client.database(&restored).drop().await.unwrap();
    }
    client.database(&db).drop().await.unwrap();
    keel.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_created_during_the_dump_is_in_the_backup_and_restored() {
    let Some((_rs, uri)) = support::cluster::replica_set(10_000).await else {
        return;
    };
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db = format!("kb_views_ddl_{}", std::process::id());
    let database = client.database(&db);
    let _ = database.drop().await;
    database
        .collection::<Document>("items")
        .insert_many((0..300).map(|i| doc! {"_id": i, "qty": i}))
        .await
        .unwrap();
    let keel = keel(&uri).await;
    let dir = scratch("keel-backup-views-ddl", "ddl");
    let (manifest, _, created) = support::cluster::when_namespace_reaches(
        &format!("{db}.items"),
        100,
        support::cluster::batch_by_batch_backup(&keel, vec![db.clone()], &dir),
        || async {
            database
                .run_command(doc! {"create": "late_view", "viewOn": "items", "pipeline": [{"$match": {"qty": {"$lt": 5}}}]})
                .await
                .unwrap();
        },
    )
    .await;
    let manifest = manifest.unwrap();
    assert!(created, "the view was created while items was being dumped");
    let view = manifest
        .namespaces
        .iter()
        .find(|n| n.collection == "late_view")
        .expect("the re-listing after the last collection found the view");
    assert_eq!(
        (view.collection_type.as_str(), view.bson_file.as_deref()),
        ("view", None)
    );
    verify(&dir).unwrap();
    let restored = format!("{db}_r");
    Restore::from(&dir)
        .drop(true)
        .rename(db.clone(), restored.clone())
        .into(&keel)
        .await
        .unwrap();
    assert_eq!(state(&client, &restored).await, state(&client, &db).await);
    assert_eq!(all(&client, &restored, "late_view").await.len(), 5);
    keel.shutdown().await;
}
