//! A primary step-down in the middle of a collection, during a backup and during a restore: the
//! run follows the new primary and finishes, and the result is complete (every document once,
//! verified against the manifest). Runs against a two-member keel-testkit replica set, or
//! `KEEL_TEST_URI` when that is a replica set with a secondary (stepped down with
//! `replSetStepDown`; the testkit run also fails the next `getMore` with
//! `InterruptedDueToReplStateChange`, 11602, which needs the testkit's fail points: almost always
//! the dump's, as the change capture's `getMore` is then waiting on the server for changes; the
//! result must be complete either way).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_backup::{Restore, verify};
use keel_testkit::{FailCommand, TestServer};
use mongodb::bson::{Document, doc};
use support::cluster::{
    all, batch_by_batch_backup, keel, replica_set_of, scratch, when_namespace_reaches,
};

async fn seed(client: &mongodb::Client, db: &str) {
    let database = client.database(db);
    let _ = database.drop().await;
    database
        .collection::<Document>("items")
        .insert_many((0..1000).map(|i| doc! {"_id": i, "n": i, "pad": "x".repeat(100)}))
        .await
        .unwrap();
    database
        .collection::<Document>("other")
        .insert_many((0..30).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
}

/// Steps the primary down: at once on the testkit (checked: another member is primary), with
/// `replSetStepDown` on a real replica set.
async fn step_down(rs: Option<&TestServer>, client: &mongodb::Client) {
    match rs {
        Some(rs) => {
            let old = rs.primary().unwrap();
            let new = rs.step_down().unwrap();
            assert_ne!(new, old);
            assert_eq!(rs.primary(), Some(new));
        }
        None => {
            client
                .database("admin")
                .run_command(doc! {"replSetStepDown": 30, "secondaryCatchUpPeriodSecs": 10})
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_down_mid_backup_continues_on_the_new_primary_and_the_backup_is_complete() {
    let Some((rs, uri)) = replica_set_of(2).await else {
        return;
    };
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db = format!("kb_stepdown_backup_{}", std::process::id());
    seed(&client, &db).await;
    let keel = keel(&uri).await;
    let dir = scratch("keel-backup-stepdown", "backup");
    let (manifest, _, stepped) = when_namespace_reaches(
        &format!("{db}.items"),
        200,
        batch_by_batch_backup(&keel, vec![db.clone()], &dir),
        || async {
            if let Some(rs) = &rs {
                // What a step-down does to an operation it interrupts.
                rs.fail_command(
                    FailCommand::new(["getMore"])
                        .times(1)
                        .error_code(11602)
                        .errmsg("operation was interrupted because of a replica set state change"),
                )
                .unwrap();
            }
            step_down(rs.as_ref(), &client).await;
        },
    )
    .await;
    let manifest = manifest.unwrap();
    assert!(
        stepped,
        "the step-down happened while items was being dumped"
    );
    let report = verify(&dir).unwrap();
    assert_eq!((report.namespaces, report.documents), (2, 1030));
    let counts: Vec<(&str, u64)> = manifest
        .namespaces
        .iter()
        .map(|n| (n.collection.as_str(), n.count))
        .collect();
    assert_eq!(counts, [("items", 1000), ("other", 30)]);

    // Every document once: the restored copy equals the source.
    let restored = format!("{db}_r");
    Restore::from(&dir)
        .drop(true)
        .rename(db.clone(), restored.clone())
        .into(&keel)
        .await
        .unwrap();
    for coll in ["items", "other"] {
        assert_eq!(
            all(&client, &restored, coll).await,
            all(&client, &db, coll).await,
            "{coll}"
        );
    }
    keel.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_down_mid_restore_continues_on_the_new_primary_and_the_restore_is_complete() {
    let Some((rs, uri)) = replica_set_of(2).await else {
        return;
    };
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db = format!("kb_stepdown_restore_{}", std::process::id());
    seed(&client, &db).await;
    let keel = keel(&uri).await;
    let dir = scratch("keel-backup-stepdown", "restore");
    keel_backup::Backup::builder(keel.clone())
        .include([db.clone()])
        .to(&dir)
        .run()
        .await
        .unwrap();

    let restored = format!("{db}_r");
    let (report, planned, stepped) = when_namespace_reaches(
        &format!("{restored}.items"),
        200,
        {
            let keel = keel.clone();
            let dir = dir.clone();
            let (db, restored) = (db.clone(), restored.clone());
            move |tx| async move {
                Restore::from(&dir)
                    .drop(true)
                    .rename(db, restored)
                    .batch_size(50)
                    .progress(tx)
                    .into(&keel)
                    .await
            }
        },
        || step_down(rs.as_ref(), &client),
    )
    .await;
    let report = report.unwrap();
    assert!(
        stepped,
        "the step-down happened while items was being restored"
    );
    assert!(
        planned
            .unwrap()
            .contains(&(format!("{restored}.items"), 1000))
    );
    assert_eq!(report.documents, 1030);
    for coll in ["items", "other"] {
        assert_eq!(
            all(&client, &restored, coll).await,
            all(&client, &db, coll).await,
            "{coll}: every document once"
        );
    }
    keel.shutdown().await;
}
