//! `keel backup`, `keel backup verify|list` and `keel restore` run as a user would, against an
//! in-process keel-testkit server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mongodb::bson::{Document, doc};
use support::{Deployment, args, db, keel, text};

/// How many documents `db.items` holds.
async fn count(client: &mongodb::Client, db: &str) -> u64 {
    client
        .database(db)
        .collection::<Document>("items")
        .count_documents(doc! {})
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_verify_list_and_restore_from_the_command_line() {
    let server = Deployment::start().await;
    let (app, copy, fromarchive, fromgz) = (db("app"), db("copy"), db("fromarchive"), db("fromgz"));
    let items_ns = format!("{app}.items");
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let items = client.database(&app).collection::<Document>("items");
    items
        .insert_many((0..20).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let base = std::env::temp_dir().join(format!("keel-cli-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let out = base.join("b1");
    let out_s = out.to_string_lossy().into_owned();

    let backup = keel(args(&[
        "backup",
        "--uri",
        &server.uri(),
        "--out",
        &out_s,
        "--gzip",
        "--include",
        &items_ns,
    ]))
    .await;
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    assert!(
        text(&backup.stdout).contains("20 documents"),
        "{}",
        text(&backup.stdout)
    );
    // Not a terminal: the progress display is plain lines on stderr.
    let progress = text(&backup.stderr);
    assert!(
        progress.contains("1 namespaces, about 20 documents"),
        "{progress}"
    );
    assert!(
        progress.contains(&format!("{items_ns}: 20 documents backed up")),
        "{progress}"
    );

    let verify = keel(args(&["backup", "verify", &out_s])).await;
    assert!(verify.status.success(), "{}", text(&verify.stderr));

    // A backup with a restore drill into the embedded server, recorded and listed.
    let drilled = base.join("b2");
    let drilled_s = drilled.to_string_lossy().into_owned();
    let backup = keel(args(&[
        "backup",
        "--uri",
        &server.uri(),
        "--out",
        &drilled_s,
        "--include",
        &items_ns,
        "--verify-restore",
    ]))
    .await;
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    let stdout = text(&backup.stdout);
    assert!(
        stdout.contains("restore drill passed: 20 documents"),
        "{stdout}"
    );
    assert!(
        stdout.contains("an embedded keel-testkit server"),
        "{stdout}"
    );
    let manifest = std::fs::read_to_string(drilled.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"last_good_drill\""), "{manifest}");

    let list = keel(args(&["backup", "list", &base.to_string_lossy()])).await;
    let listed = text(&list.stdout);
    assert!(listed.contains("complete, verified"), "{listed}");
    assert!(
        listed.contains("b1\tcomplete, verified (20 documents), never drilled"),
        "{listed}"
    );
    assert!(
        listed.contains("b2\tcomplete, verified (20 documents), last drill passed"),
        "{listed}"
    );

    // Two scheduled runs keeping the last one.
    let root = base.join("scheduled");
    let root_s = root.to_string_lossy().into_owned();
    let scheduled = keel(args(&[
        "backup",
        "schedule",
        "--uri",
        &server.uri(),
        "--root",
        &root_s,
        "--every",
        "1s",
        "--runs",
        "2",
        "--keep-last",
        "1",
        "--include",
        &items_ns,
    ]))
    .await;
    assert!(scheduled.status.success(), "{}", text(&scheduled.stderr));
    let said = text(&scheduled.stdout);
    assert!(said.contains("2 backups written, 0 failed"), "{said}");
    assert!(said.contains("1 pruned"), "{said}");
    let left: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("manifest.json").exists())
        .collect();
    assert_eq!(left.len(), 1);
    let bad = keel(args(&[
        "backup",
        "schedule",
        "--uri",
        &server.uri(),
        "--root",
        &root_s,
        "--every",
        "6",
    ]))
    .await;
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("no unit"),
        "{}",
        text(&bad.stderr)
    );

    // A cron schedule (with a seconds field: every second) runs at its next match.
    let cron_root = base.join("cron");
    let cron = keel(args(&[
        "backup",
        "schedule",
        "--uri",
        &server.uri(),
        "--root",
        &cron_root.to_string_lossy(),
        "--cron",
        "* * * * * *",
        "--runs",
        "1",
        "--include",
        &items_ns,
    ]))
    .await;
    assert!(cron.status.success(), "{}", text(&cron.stderr));
    assert!(
        text(&cron.stdout).contains("1 backups written, 0 failed"),
        "{}",
        text(&cron.stdout)
    );
    let bad_cron = keel(args(&[
        "backup",
        "schedule",
        "--uri",
        &server.uri(),
        "--root",
        &cron_root.to_string_lossy(),
        "--cron",
        "0 */6 * *",
    ]))
    .await;
    assert!(!bad_cron.status.success());
    assert!(
        text(&bad_cron.stderr).contains("five fields"),
        "{}",
        text(&bad_cron.stderr)
    );

    // A drill of an existing backup into a given URI.
    let drill = keel(args(&[
        "backup",
        "drill",
        &out_s,
        "--target-uri",
        &server.uri(),
    ]))
    .await;
    assert!(drill.status.success(), "{}", text(&drill.stderr));
    assert!(text(&drill.stdout).contains("restore drill passed"));

    let restore = keel(args(&[
        "restore",
        "--uri",
        &server.uri(),
        "--from",
        &out_s,
        "--drop",
        "--ns-from",
        &app,
        "--ns-to",
        &copy,
    ]))
    .await;
    assert!(restore.status.success(), "{}", text(&restore.stderr));
    assert!(
        text(&restore.stderr).contains(&format!("{copy}.items: 20 documents restored")),
        "{}",
        text(&restore.stderr)
    );
    let copied = count(&client, &copy).await;
    assert_eq!(copied, 20);

    // The backup as a mongodump archive, restored from the archive.
    let archive = base.join("b1.archive");
    let archive_s = archive.to_string_lossy().into_owned();
    let written = keel(args(&["backup", "archive", &out_s, &archive_s])).await;
    assert!(written.status.success(), "{}", text(&written.stderr));
    let restore = keel(args(&[
        "restore",
        "--uri",
        &server.uri(),
        "--archive",
        &archive_s,
        "--drop",
        "--ns-from",
        &app,
        "--ns-to",
        &fromarchive,
    ]))
    .await;
    assert!(restore.status.success(), "{}", text(&restore.stderr));
    assert!(
        text(&restore.stdout).contains("b1.archive"),
        "{}",
        text(&restore.stdout)
    );
    let from_archive = count(&client, &fromarchive).await;
    assert_eq!(from_archive, 20);
    // `--gzip`: a gzip'd archive, restored without being told it is.
    let gz = base.join("b1.archive.gz");
    let gz_s = gz.to_string_lossy().into_owned();
    let written = keel(args(&["backup", "archive", &out_s, &gz_s, "--gzip"])).await;
    assert!(written.status.success(), "{}", text(&written.stderr));
    assert!(text(&written.stdout).contains("gzip'd"));
    assert_eq!(&std::fs::read(&gz).unwrap()[..2], &[0x1f, 0x8b]);
    let restore = keel(args(&[
        "restore",
        "--uri",
        &server.uri(),
        "--archive",
        &gz_s,
        "--drop",
        "--ns-from",
        &app,
        "--ns-to",
        &fromgz,
    ]))
    .await;
    assert!(restore.status.success(), "{}", text(&restore.stderr));
    let from_gz = count(&client, &fromgz).await;
    assert_eq!(from_gz, 20);

    // A corrupted backup: verify exits non-zero with one sentence.
    let file = out.join(&app).join("items.bson.gz");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let verify = keel(args(&["backup", "verify", &out_s])).await;
    assert!(!verify.status.success());
    let stderr = text(&verify.stderr);
    assert!(stderr.contains("is not intact"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let missing = keel(args(&["backup", "--out", &out_s])).await;
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("--uri"),
        "{}",
        text(&missing.stderr)
    );
    for name in [&app, &copy, &fromarchive, &fromgz] {
        let _ = client.database(name).drop().await;
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// The moto helper of keel-backup's own S3 test (one copy of the install-and-start logic).
#[cfg(feature = "s3")]
#[path = "../../keel-backup/tests/support/moto.rs"]
mod moto;

/// `--out s3://…` and `--from s3://…` against a real S3-compatible server (moto, started here;
/// prints `SKIPPED` with the reason when it cannot be installed).
#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_and_restore_from_s3_with_credentials_from_the_environment() {
    const SECRET: &str = "keel-cli-secret-never-printed-77a1";
    let moto = match moto::start() {
        Ok(moto) => moto,
        Err(reason) => {
            println!("SKIPPED: {reason}, so `keel backup --out s3://` did not run");
            return;
        }
    };
    moto.create_bucket("cli-backups");
    let env = vec![
        ("AWS_ENDPOINT", moto.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "keel-cli-key".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.to_owned()),
    ];
    let server = Deployment::start().await;
    let (app, from_s3) = (db("s3app"), db("from_s3"));
    let items_ns = format!("{app}.items");
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    client
        .database(&app)
        .collection::<Document>("items")
        .insert_many((0..20).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let backup_args = args(&[
        "backup",
        "--uri",
        &server.uri(),
        "--out",
        "s3://cli-backups/app/b1",
        "--include",
        &items_ns,
    ]);
    let backup = support::keel_with_env(backup_args.clone(), env.clone()).await;
    let (out, err) = (text(&backup.stdout), text(&backup.stderr));
    assert!(backup.status.success(), "{err}");
    let uploaded = out
        .find("uploaded to s3://cli-backups/app/b1 (4 objects, the manifest last)")
        .unwrap_or_else(|| panic!("{out}"));
    let written = out
        .find("backup written to s3://cli-backups/app/b1 (1 namespaces, 20 documents")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        uploaded < written,
        "where the backup finally is comes last, after the upload: {out}"
    );
    assert!(!out.contains(SECRET) && !err.contains(SECRET));

    let again = support::keel_with_env(backup_args, env.clone()).await;
    assert!(!again.status.success());
    let err = text(&again.stderr);
    assert!(err.contains("already holds objects"), "{err}");
    assert!(!err.contains(SECRET), "{err}");

    let restore = support::keel_with_env(
        args(&[
            "restore",
            "--uri",
            &server.uri(),
            "--from",
            "s3://cli-backups/app/b1",
            "--drop",
            "--ns-from",
            &app,
            "--ns-to",
            &from_s3,
        ]),
        env.clone(),
    )
    .await;
    assert!(restore.status.success(), "{}", text(&restore.stderr));
    let said = text(&restore.stdout);
    assert!(
        said.contains("20 documents") && said.contains("from s3://cli-backups/app/b1."),
        "the s3 URL, not the staging directory: {said}"
    );
    let restored = count(&client, &from_s3).await;
    assert_eq!(restored, 20);

    let missing = support::keel_with_env(
        args(&[
            "restore",
            "--uri",
            &server.uri(),
            "--from",
            "s3://cli-backups/app/none",
        ]),
        env,
    )
    .await;
    assert!(!missing.status.success());
    let err = text(&missing.stderr);
    assert!(err.contains("no manifest.json"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    for name in [&app, &from_s3] {
        let _ = client.database(name).drop().await;
    }
}
