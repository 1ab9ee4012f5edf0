//! The consistent point in time on a replica set: inserts, updates, replaces and deletes made
//! while a collection is being dumped (behind and ahead of the cursor) end up in the restored
//! data exactly as at the end of the dump; a change history lost during the dump (286) fails the
//! backup with the reason. Runs against a keel-testkit replica set, or `KEEL_TEST_URI` when that
//! is a replica set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_backup::{BackupError, Restore, verify};
use mongodb::bson::{Bson, Document, doc};
use support::cluster::{all, batch_by_batch_backup, keel, replica_set, when_namespace_reaches};

fn scratch(name: &str) -> std::path::PathBuf {
    support::cluster::scratch("keel-backup-pit", name)
}

async fn seed(client: &mongodb::Client, db: &str) {
    let database = client.database(db);
    let _ = database.drop().await;
    database
        .collection::<Document>("items")
        .insert_many((0..1000).map(|i| doc! {"_id": i, "n": i, "tag": "x", "arr": [1, 2, 3]}))
        .await
        .unwrap();
    database
        .collection::<Document>("other")
        .insert_many((0..50).map(|i| doc! {"_id": i, "v": i}))
        .await
        .unwrap();
}

/// Writes of every kind while `items` is being dumped: `_id` 5, 6, 7 and -1 sort behind the
/// cursor (the dump has passed them), 900, 901 and 5000 ahead of it.
async fn writes_during_the_dump(client: &mongodb::Client, db: &str, elsewhere: &str) {
    let items = client.database(db).collection::<Document>("items");
    items
        .update_one(
            doc! {"_id": 5},
            doc! {"$set": {"n": -5}, "$unset": {"tag": ""}},
        )
        .await
        .unwrap();
    items
        .update_one(doc! {"_id": 8}, doc! {"$pop": {"arr": 1}})
        .await
        .unwrap();
    items
        .update_one(doc! {"_id": 900}, doc! {"$inc": {"n": 1000}})
        .await
        .unwrap();
    items.delete_one(doc! {"_id": 6}).await.unwrap();
    items.delete_one(doc! {"_id": 901}).await.unwrap();
    items.insert_one(doc! {"_id": -1, "n": -1}).await.unwrap();
    items
        .insert_one(doc! {"_id": 5000, "n": 5000})
        .await
        .unwrap();
    items
        .replace_one(doc! {"_id": 7}, doc! {"_id": 7, "replaced": true})
        .await
        .unwrap();
    items.insert_one(doc! {"_id": 6000}).await.unwrap();
    items.delete_one(doc! {"_id": 6000}).await.unwrap();
    // The same document changed twice: the replay must end at the second value.
    items
        .update_one(doc! {"_id": 10}, doc! {"$set": {"n": "first"}})
        .await
        .unwrap();
    items
        .update_one(doc! {"_id": 10}, doc! {"$set": {"n": "second"}})
        .await
        .unwrap();
    client
        .database(db)
        .collection::<Document>("other")
        .update_many(doc! {}, doc! {"$inc": {"v": 1}})
        .await
        .unwrap();
    // A namespace the backup does not take: its change is not captured.
    client
        .database(elsewhere)
        .collection::<Document>("x")
        .insert_one(doc! {"_id": 1})
        .await
        .unwrap();
}

/// An independent decoder (PyMongo's `bson.decode_file_iter`) reads `changes.bson`: as many
/// change events as the manifest says, each with an operation type, a namespace and a cluster
/// time. Prints `SKIPPED` when PyMongo is not installed.
fn pymongo_decodes_the_changes(file: &std::path::Path, count: u64) {
    let has_bson = std::process::Command::new("python3")
        .args(["-c", "import bson; bson.decode_file_iter"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_bson {
        println!(
            "SKIPPED: python3 with PyMongo's bson is not installed, so changes.bson was not decoded independently"
        );
        return;
    }
    let script = "import sys, bson\n\
        events = list(bson.decode_file_iter(open(sys.argv[1], 'rb')))\n\
        assert all(e['operationType'] and e['ns']['db'] and e['clusterTime'] for e in events)\n\
        print(len(events), sorted(set(e['operationType'] for e in events)))\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with(&format!("{count} ")), "{said}");
    assert!(
        said.contains("'update'") && said.contains("'delete'"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_the_dump_are_restored_as_at_the_end_point() {
    let Some((_rs, uri)) = replica_set(10_000).await else {
        return;
    };
    let db = format!("kb_pit_{}", std::process::id());
    let elsewhere = format!("{db}_elsewhere");
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    seed(&client, &db).await;
    let keel = keel(&uri).await;
    let dir = scratch("pit");

    let items = format!("{db}.items");
    let (manifest, planned, wrote) = when_namespace_reaches(
        &items,
        100,
        batch_by_batch_backup(&keel, vec![db.clone()], &dir),
        || writes_during_the_dump(&client, &db, &elsewhere),
    )
    .await;
    let manifest = manifest.unwrap();
    assert!(wrote, "the writes happened while items was being dumped");
    let planned = planned.expect("a Planned event");
    assert!(planned.contains(&(items.clone(), 1000)), "{planned:?}");
    let changes = manifest.changes.clone().expect("changes captured");
    // 12 document changes in items, 50 in other; the other database's insert is not taken.
    // `startAtOperationTime` is inclusive, so the seed's last insert (at exactly T0) may be
    // captured too; replaying it is harmless.
    assert!((62..=63).contains(&changes.count), "{changes:?}");
    assert!(changes.to >= changes.from);
    verify(&dir).unwrap();
    pymongo_decodes_the_changes(&dir.join(&changes.file), changes.count);

    let restored = format!("{db}_r");
    let report = Restore::from(&dir)
        .drop(true)
        .rename(db.clone(), restored.clone())
        .into(&keel)
        .await
        .unwrap();
    assert_eq!(report.changes, changes.count);
    for coll in ["items", "other"] {
        let source = all(&client, &db, coll).await;
        let target = all(&client, &restored, coll).await;
        assert_eq!(target.len(), source.len(), "{coll}");
        assert_eq!(target, source, "{coll} restored as at the end point");
    }
    let items_now = all(&client, &restored, "items").await;
    let ten = items_now
        .iter()
        .find(|d| d.get("_id") == Some(&Bson::Int32(10)));
    assert_eq!(ten.unwrap().get_str("n").unwrap(), "second");
    keel.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lost_during_the_dump_fails_the_backup_and_says_why() {
    if std::env::var("KEEL_TEST_URI").is_ok() {
        println!(
            "SKIPPED against KEEL_TEST_URI: losing history needs a tiny oplog, which a shared server cannot be given"
        );
        return;
    }
    let Some((_rs, uri)) = replica_set(20).await else {
        return;
    };
    let db = format!("kb_lost_{}", std::process::id());
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    seed(&client, &db).await;
    let keel = keel(&uri).await;
    let dir = scratch("lost");
    let (result, _, burst) = when_namespace_reaches(
        &format!("{db}.items"),
        50,
        batch_by_batch_backup(&keel, vec![db.clone()], &dir),
        || async {
            // 100 changes at once into an oplog of 20: the capture's position falls off.
            client
                .database(&db)
                .collection::<Document>("burst")
                .insert_many((0..100).map(|i| doc! {"_id": i}))
                .await
                .unwrap();
        },
    )
    .await;
    let error = result.unwrap_err();
    assert!(burst);
    assert!(
        matches!(error, BackupError::ChangeHistoryLost { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("286"), "{message}");
    assert!(message.contains("enlarge the oplog"), "{message}");
    assert!(
        !dir.exists(),
        "a failed backup leaves nothing at the destination"
    );
    let partial = dir.with_file_name(".lost.partial");
    assert!(!partial.exists(), "nor a partial directory");
    keel.shutdown().await;
}
