//! A real S3-compatible server (moto, started by the test; feature `s3`): a backup uploaded to
//! `s3://bucket/prefix` and downloaded back verifies and restores with every document; the
//! prefix then counts as taken; credentials never show in an error. Prints `SKIPPED` with the
//! reason when moto cannot be installed here.
#![cfg(feature = "s3")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_backup::remote::{download, upload};
use keel_backup::{Restore, s3};
use support::cluster::{any_deployment, count, seeded_gzip_backup};

const SECRET: &str = "keel-test-secret-never-logged-5f1d";

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keel-backup-s3-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("aws_endpoint", endpoint.to_owned()),
        ("aws_allow_http", "true".to_owned()),
        ("aws_region", "us-east-1".to_owned()),
        ("aws_access_key_id", "keel-test-key".to_owned()),
        ("aws_secret_access_key", SECRET.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_round_trips_through_a_real_s3_compatible_server() {
    let moto = match support::moto::start() {
        Ok(moto) => moto,
        Err(reason) => {
            println!("SKIPPED: {reason}, so the real S3 round trip did not run");
            return;
        }
    };
    moto.create_bucket("keel-backups");
    let (_server, uri) = any_deployment().await;
    let db = format!("kb_s3_{}", std::process::id());
    let dir = scratch("src");
    let (client, keel) = seeded_gzip_backup(&uri, &db, 300, &"s".repeat(2000), &dir).await;

    let location = s3::open_with("s3://keel-backups/app/b1", options(&moto.endpoint)).unwrap();
    assert_eq!(location.to_string(), "s3://keel-backups/app/b1");
    assert!(
        s3::prefix_is_empty(location.store.as_ref(), &location.prefix)
            .await
            .unwrap()
    );
    let files = upload(&dir, location.store.as_ref(), &location.prefix)
        .await
        .unwrap();
    assert_eq!(files, 4, "prelude, metadata, documents, manifest");
    assert!(
        !s3::prefix_is_empty(location.store.as_ref(), &location.prefix)
            .await
            .unwrap(),
        "the prefix is taken once a backup is there"
    );
    let back = scratch("back");
    let manifest = download(location.store.as_ref(), &location.prefix, &back)
        .await
        .unwrap();
    assert_eq!(manifest.documents(), 300);
    let target = format!("{db}_from_s3");
    Restore::from(&back)
        .drop(true)
        .rename(db.clone(), target.clone())
        .into(&keel)
        .await
        .unwrap();
    assert_eq!(count(&client, &target, "items").await, 300);

    // A prefix with nothing there: an error that names it, without the secret.
    let empty = s3::open_with("s3://keel-backups/app/none", options(&moto.endpoint)).unwrap();
    let error = download(empty.store.as_ref(), &empty.prefix, &scratch("none"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("app/none") && error.contains("no manifest.json"),
        "{error}"
    );
    assert!(!error.contains(SECRET), "{error}");
    // A bucket that does not exist: the server's refusal, without the secret.
    let missing = s3::open_with("s3://no-such-bucket/app/b1", options(&moto.endpoint)).unwrap();
    let error = upload(&dir, missing.store.as_ref(), &missing.prefix)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("the object store failed"), "{error}");
    assert!(!error.contains(SECRET), "{error}");

    let _ = client.database(&db).drop().await;
    let _ = client.database(&target).drop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&back);
    keel.shutdown().await;
}

#[test]
fn s3_urls_without_a_bucket_a_prefix_or_with_credentials_are_refused_without_echoing_them() {
    for (url, says) in [
        ("s3://", "names no bucket"),
        ("s3://bucket", "a prefix of its own"),
        ("s3://bucket/", "a prefix of its own"),
        (
            "s3://AKIA:keel-url-secret@bucket/app",
            "credentials do not go in the URL",
        ),
    ] {
        let error = s3::open(url).unwrap_err().to_string();
        assert!(error.contains(says), "{url}: {error}");
        assert!(!error.contains("keel-url-secret"), "{error}");
    }
}
