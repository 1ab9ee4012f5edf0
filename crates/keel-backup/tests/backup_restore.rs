//! Backup, verify and restore against keel-testkit (or a real MongoDB with `KEEL_TEST_URI`):
//! round trip of every BSON type and of indexes, gzip and plain, corruption detection,
//! a connection reset mid-backup, idempotent restores, and an independent BSON decoder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};

use keel_backup::{
    Backup, BackupError, DRILL_PREFIX, Manifest, Restore, RestoreDrill, read_archive, verify,
    write_archive, write_archive_with,
};
use keel_testkit::{FaultProxy, TestServer};
use mongodb::bson::{
    Binary, Bson, DateTime, Decimal128, Document, JavaScriptCodeWithScope, Regex, Timestamp, doc,
    oid::ObjectId, spec::BinarySubtype,
};
use mongokeel::{Keel, KeelConfig};

fn config(uri: &str) -> KeelConfig {
    let mut config = KeelConfig::development(uri).unwrap();
    for (path, value) in [
        ("heartbeat", "500ms"),
        ("timeouts.connect", "1s"),
        ("timeouts.server_selection", "2s"),
        ("timeouts.attempt", "3s"),
        ("timeouts.checkout_wait", "1s"),
        ("timeouts.deadline", "8s"),
        ("retry.initial_backoff", "10ms"),
        ("retry.max_backoff", "50ms"),
    ] {
        config.set(path, value).unwrap();
    }
    config
}

/// A fresh directory path (not created) under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    support::cluster::scratch("keel-backup", name)
}

/// The server under test: `KEEL_TEST_URI` or a fresh testkit server; plus a unique database
/// name so runs against a real server do not collide.
struct Deployment {
    _server: Option<TestServer>,
    uri: String,
    addr: Option<std::net::SocketAddr>,
}

async fn deployment() -> Deployment {
    match std::env::var("KEEL_TEST_URI") {
        Ok(uri) => Deployment {
            _server: None,
            uri,
            addr: None,
        },
        Err(_) => {
            let server = TestServer::start().await.unwrap();
            Deployment {
                uri: server.uri(),
                addr: Some(server.addr()),
                _server: Some(server),
            }
        }
    }
}

/// A seeded database `kb_<test>_<pid>` and its backup in a fresh directory `dir`.
async fn seeded_backup(
    deployment: &Deployment,
    test: &str,
    dir: &str,
    gzip: bool,
) -> (String, Keel, PathBuf) {
    let db = db_name(test);
    seed(&deployment.uri, &db).await;
    let keel = keel(&deployment.uri).await;
    let dir = scratch(dir);
    Backup::builder(keel.clone())
        .include([db.clone()])
        .to(&dir)
        .gzip(gzip)
        .run()
        .await
        .unwrap();
    (db, keel, dir)
}

fn db_name(test: &str) -> String {
    format!("kb_{test}_{}", std::process::id())
}

async fn keel(uri: &str) -> Keel {
    Keel::builder(config(uri)).build().await.unwrap()
}

fn every_type(i: i32) -> Document {
    doc! {
        "_id": i,
        "double": 1.5,
        "string": format!("doc {i} é"),
        "doc": {"a": 1, "b": [1, "x"]},
        "array": [1, 2.5, "three", {"four": 4}],
        "binary": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] },
        "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
        "oid": ObjectId::from_bytes([1; 12]),
        "bool": true,
        "date": DateTime::from_millis(1_700_000_000_123),
        "null": Bson::Null,
        "regex": Regex { pattern: "^a.*b$".into(), options: "i".into() },
        "code": Bson::JavaScriptCode("function() { return 1; }".into()),
        "code_w_s": JavaScriptCodeWithScope { code: "x".into(), scope: doc! {"x": 1} },
        "int32": 42_i32,
        "ts": Timestamp { time: 1_700_000_000, increment: 7 },
        "int64": 1_i64 << 40,
        "decimal": "1.25".parse::<Decimal128>().unwrap(),
        "min": Bson::MinKey,
        "max": Bson::MaxKey,
        "symbol": Bson::Symbol("sym".into()),
        "undefined": Bson::Undefined,
    }
}

async fn seed(uri: &str, db: &str) {
    let client = mongodb::Client::with_uri_str(uri).await.unwrap();
    let database = client.database(db);
    let _ = database.drop().await;
    database
        // Capped, validated collections and views: tests/views_and_options.rs.
        .run_command(doc! {"create": "opts", "changeStreamPreAndPostImages": {"enabled": true}})
        .await
        .unwrap();
    let items = database.collection::<Document>("items");
    items.insert_many((0..250).map(every_type)).await.unwrap();
    database
        .run_command(doc! {"createIndexes": "items", "indexes": [
            {"key": {"string": 1}, "name": "string_1", "unique": true},
            {"key": {"int32": -1, "date": 1}, "name": "int32_-1_date_1"},
        ]})
        .await
        .unwrap();
    database
        .collection::<Document>("opts")
        .insert_one(doc! {"_id": 1, "x": 1})
        .await
        .unwrap();
}

async fn all(uri: &str, db: &str, coll: &str) -> Vec<Document> {
    let client = mongodb::Client::with_uri_str(uri).await.unwrap();
    let mut docs: Vec<Document> = futures_util::TryStreamExt::try_collect(
        client
            .database(db)
            .collection::<Document>(coll)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    docs.sort_by_key(|d| d.get_i32("_id").unwrap_or_default());
    docs
}

async fn index_names(uri: &str, db: &str, coll: &str) -> Vec<String> {
    let client = mongodb::Client::with_uri_str(uri).await.unwrap();
    let mut names = client
        .database(db)
        .collection::<Document>(coll)
        .list_index_names()
        .await
        .unwrap();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_of_every_bson_type_and_indexes_plain_and_gzip() {
    let deployment = deployment().await;
    let db = db_name("roundtrip");
    seed(&deployment.uri, &db).await;
    let keel = keel(&deployment.uri).await;
    for gzip in [false, true] {
        let dir = scratch(if gzip { "gz" } else { "plain" });
        let manifest = Backup::builder(keel.clone())
            .include([db.clone()])
            .to(&dir)
            .gzip(gzip)
            .run()
            .await
            .unwrap();
        assert!(manifest.complete);
        assert_eq!(manifest.documents(), 251);
        let ext = if gzip { "bson.gz" } else { "bson" };
        assert!(dir.join(&db).join(format!("items.{ext}")).exists());
        let meta = std::fs::read_to_string(dir.join(&db).join("items.metadata.json")).unwrap();
        assert!(meta.contains(r#""collectionName":"items""#), "{meta}");
        assert!(meta.contains("string_1"), "{meta}");
        assert!(dir.join("prelude.json").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(&db).join(format!("items.{ext}")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(verify(&dir).unwrap().documents, 251);

        let restored = format!("{db}_r{}", u8::from(gzip));
        Restore::from(&dir)
            .drop(true)
            .rename(db.clone(), restored.clone())
            .into(&keel)
            .await
            .unwrap();
        assert_eq!(
            all(&deployment.uri, &restored, "items").await,
            (0..250).map(every_type).collect::<Vec<_>>()
        );
        assert_eq!(
            index_names(&deployment.uri, &restored, "items").await,
            ["_id_", "int32_-1_date_1", "string_1"]
        );
    }
}

/// Every file of one namespace, for the corruption tests.
fn items_file(dir: &Path, db: &str) -> PathBuf {
    dir.join(db).join("items.bson")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_truncation_and_missing_collection_are_each_detected() {
    let deployment = deployment().await;
    let (db, _keel, original) = seeded_backup(&deployment, "corrupt", "original", false).await;
    let bytes = std::fs::read(items_file(&original, &db)).unwrap();

    let copy = |name: &str| {
        let dir = scratch(name);
        copy_dir(&original, &dir);
        dir
    };
    let problems = |dir: &Path| match verify(dir) {
        Err(BackupError::NotIntact { problems, .. }) => problems,
        other => panic!("expected NotIntact, got {other:?}"),
    };

    for at in [0, 4, bytes.len() / 2, bytes.len() - 1] {
        let dir = copy("flipped");
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        std::fs::write(items_file(&dir, &db), &flipped).unwrap();
        let found = problems(&dir);
        assert!(
            found.iter().any(|p| p.contains("items.bson has SHA-256")),
            "byte {at}: {found:?}"
        );
    }
    let dir = copy("truncated");
    std::fs::write(items_file(&dir, &db), &bytes[..bytes.len() - 10]).unwrap();
    assert!(problems(&dir).iter().any(|p| p.contains("items.bson")));

    let dir = copy("missing");
    std::fs::remove_file(items_file(&dir, &db)).unwrap();
    assert!(
        problems(&dir)
            .iter()
            .any(|p| p.contains("items.bson is missing"))
    );

    // A file whose hash was updated in the manifest but whose framing is broken: framing check.
    let dir = copy("framing");
    let cut = &bytes[..bytes.len() - 10];
    std::fs::write(items_file(&dir, &db), cut).unwrap();
    let mut manifest = Manifest::read(&dir).unwrap();
    use sha2::Digest as _;
    for ns in &mut manifest.namespaces {
        if ns.collection == "items" {
            ns.bson_sha256 = Some(hex::encode(sha2::Sha256::digest(cut)));
        }
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    assert!(
        problems(&dir).iter().any(|p| p.contains("not valid BSON")),
        "{:?}",
        problems(&dir)
    );

    let dir = copy("incomplete");
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    assert!(verify(&dir).is_err());
    assert!(verify(&original).is_ok());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_rerun_is_idempotent_in_both_modes() {
    let deployment = deployment().await;
    let db = db_name("idem");
    seed(&deployment.uri, &db).await;
    let keel = keel(&deployment.uri).await;
    let dir = scratch("idem");
    Backup::builder(keel.clone())
        .include([format!("{db}.items")])
        .to(&dir)
        .run()
        .await
        .unwrap();
    let target = format!("{db}_t");
    for drop in [true, true, false, false] {
        let report = Restore::from(&dir)
            .drop(drop)
            .rename(db.clone(), target.clone())
            .into(&keel)
            .await
            .unwrap();
        assert_eq!(report.documents, 250);
        assert_eq!(all(&deployment.uri, &target, "items").await.len(), 250);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_mid_backup_resume_after_the_last_id() {
    let deployment = deployment().await;
    let Some(addr) = deployment.addr else {
        // With KEEL_TEST_URI the proxy would sit in front of a real server too, but the URI may
        // name a replica set whose members the driver would reach around the proxy.
        eprintln!(
            "skipped: the reset test runs against keel-testkit only (replica-set URIs bypass a proxy)"
        );
        return;
    };
    let db = db_name("reset");
    let client = mongodb::Client::with_uri_str(&deployment.uri)
        .await
        .unwrap();
    let big = "x".repeat(1000);
    client
        .database(&db)
        .collection::<Document>("big")
        .insert_many((0..1500).map(|i| doc! {"_id": i, "pad": &big}))
        .await
        .unwrap();
    let proxy = FaultProxy::start(addr).await.unwrap();
    let keel = keel(&proxy.uri()).await;
    // Every connection is reset after 300 kB: the 1.5 MB dump needs several reconnections.
    proxy.reset_after_bytes(Some(300_000));
    let dir = scratch("reset");
    let manifest = Backup::builder(keel.clone())
        .include([db.clone()])
        .to(&dir)
        .batch_size(50)
        .run()
        .await
        .unwrap();
    proxy.reset_after_bytes(None);
    assert_eq!(manifest.documents(), 1500);
    verify(&dir).unwrap();
    let ids: Vec<i32> = {
        let mut reader = std::fs::read(dir.join(&db).join("big.bson")).unwrap();
        let mut ids = Vec::new();
        let mut slice = &mut reader[..];
        while !slice.is_empty() {
            let len = i32::from_le_bytes(slice[..4].try_into().unwrap()) as usize;
            let d = mongodb::bson::RawDocument::from_bytes(&slice[..len]).unwrap();
            ids.push(d.get_i32("_id").unwrap());
            slice = &mut slice[len..];
        }
        ids
    };
    assert_eq!(
        ids,
        (0..1500).collect::<Vec<_>>(),
        "no document twice, none missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_mid_restore_finish_with_every_document_once() {
    let deployment = deployment().await;
    let Some(addr) = deployment.addr else {
        eprintln!(
            "skipped: the reset test runs against keel-testkit only (replica-set URIs bypass a proxy)"
        );
        return;
    };
    let db = db_name("reset_restore");
    let client = mongodb::Client::with_uri_str(&deployment.uri)
        .await
        .unwrap();
    let big = "x".repeat(1000);
    client
        .database(&db)
        .collection::<Document>("big")
        .insert_many((0..1500).map(|i| doc! {"_id": i, "pad": &big}))
        .await
        .unwrap();
    let dir = scratch("reset_restore");
    let direct = keel(&deployment.uri).await;
    Backup::builder(direct.clone())
        .include([db.clone()])
        .to(&dir)
        .run()
        .await
        .unwrap();
    let proxy = FaultProxy::start(addr).await.unwrap();
    let through_proxy = keel(&proxy.uri()).await;
    // Every connection is reset after 300 kB: writing 1.5 MB and reading it back needs several
    // reconnections, some in the middle of an insert.
    proxy.reset_after_bytes(Some(300_000));
    let restored = format!("{db}_r");
    let report = Restore::from(&dir)
        .drop(true)
        .rename(db.clone(), restored.clone())
        .batch_size(100)
        .into(&through_proxy)
        .await
        .unwrap();
    proxy.reset_after_bytes(None);
    assert_eq!(report.documents, 1500);
    let source = all(&deployment.uri, &db, "big").await;
    assert_eq!(source.len(), 1500);
    assert_eq!(
        all(&deployment.uri, &restored, "big").await,
        source,
        "no document twice, none missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_past_the_deadline_fails_cleanly() {
    let deployment = deployment().await;
    let Some(addr) = deployment.addr else {
        eprintln!("skipped: the outage test needs the testkit's proxy in front of the server");
        return;
    };
    let db = db_name("outage");
    let client = mongodb::Client::with_uri_str(&deployment.uri)
        .await
        .unwrap();
    client
        .database(&db)
        .collection::<Document>("c")
        .insert_many((0..200).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let proxy = FaultProxy::start(addr).await.unwrap();
    let keel = keel(&proxy.uri()).await;
    // Every connection dies within its handshake: no progress is possible.
    proxy.reset_after_bytes(Some(300));
    let dir = scratch("outage");
    let result = Backup::builder(keel.clone())
        .include([db.clone()])
        .to(&dir)
        .batch_size(10)
        .outage_deadline(std::time::Duration::from_millis(300))
        .run()
        .await;
    proxy.reset_after_bytes(None);
    let error = result.unwrap_err();
    assert!(!dir.exists(), "nothing that looks like a backup is left");
    assert!(
        !error.to_string().contains("Error {"),
        "a sentence, not a Debug dump: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymongo_reads_the_files_back() {
    let has_bson = std::process::Command::new("python3")
        .args(["-c", "import bson"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_bson {
        eprintln!(
            "SKIPPED: python3 with PyMongo's bson is not installed (pip install pymongo), so the independent decoder check did not run"
        );
        return;
    }
    let deployment = deployment().await;
    let db = db_name("pymongo");
    seed(&deployment.uri, &db).await;
    let keel = keel(&deployment.uri).await;
    for gzip in [false, true] {
        let dir = scratch("py");
        Backup::builder(keel.clone())
            .include([format!("{db}.items")])
            .to(&dir)
            .gzip(gzip)
            .run()
            .await
            .unwrap();
        let file = dir
            .join(&db)
            .join(if gzip { "items.bson.gz" } else { "items.bson" });
        let script = "import sys, gzip, bson, json\n\
            p = sys.argv[1]\n\
            f = gzip.open(p, 'rb') if p.endswith('.gz') else open(p, 'rb')\n\
            docs = list(bson.decode_file_iter(f, codec_options=bson.CodecOptions(unicode_decode_error_handler='strict')))\n\
            print(len(docs), docs[7]['string'], docs[7]['int64'])\n\
            m = json.load(open(sys.argv[2]))\n\
            assert m['indexes'] is not None and m['collectionName'] == 'items'\n";
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&file)
            .arg(dir.join(&db).join("items.metadata.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("250 doc 7 é {}", 1_i64 << 40)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_drill_is_recorded_in_the_manifest_pass_or_fail() {
    let deployment = deployment().await;
    let (db, keel, dir) = seeded_backup(&deployment, "drill", "drill", false).await;
    let before = all(&deployment.uri, &db, "items").await;

    // Into the same deployment: the drill restores into keel_drill_<db>, never into <db>.
    let record = RestoreDrill::new(&dir)
        .target_description("the test deployment")
        .run(&keel)
        .await
        .unwrap();
    assert!(record.ok);
    assert_eq!(record.documents, 251);
    assert!(record.seconds > 0.0);
    let manifest = Manifest::read(&dir).unwrap();
    assert_eq!(manifest.last_drill.as_ref(), Some(&record));
    assert_eq!(
        manifest.last_good_drill.as_deref(),
        Some(record.at.as_str())
    );
    assert_eq!(all(&deployment.uri, &db, "items").await, before);
    let client = mongodb::Client::with_uri_str(&deployment.uri)
        .await
        .unwrap();
    let leftovers: Vec<String> = client
        .list_database_names()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(DRILL_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Recording the drill keeps the backup intact.
    verify(&dir).unwrap();

    // A damaged backup fails its drill, and the failure is recorded next to the last success.
    let mut bytes = std::fs::read(items_file(&dir, &db)).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(items_file(&dir, &db), &bytes).unwrap();
    let error = RestoreDrill::new(&dir).run(&keel).await.unwrap_err();
    assert!(error.to_string().contains("not intact"), "{error}");
    let manifest = Manifest::read(&dir).unwrap();
    let failed = manifest.last_drill.unwrap();
    assert!(!failed.ok);
    assert!(failed.error.unwrap().contains("not intact"));
    assert_eq!(
        manifest.last_good_drill.as_deref(),
        Some(record.at.as_str())
    );
}

/// PyMongo's `bson.decode` walks the archive as mongo-tools' `common/archive/spec.md` frames it
/// (magic, header, one metadata document per namespace, terminator, segments), an independent
/// reading of the format: 250 documents in `<db>.items`. Prints `SKIPPED` without PyMongo.
fn pymongo_decodes_the_archive(archive: &Path, db: &str) {
    let has_bson = std::process::Command::new("python3")
        .args(["-c", "import bson"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_bson {
        println!(
            "SKIPPED: python3 with PyMongo's bson is not installed, so the archive was not decoded independently"
        );
        return;
    }
    let script = "import sys, gzip, struct, bson\n\
        raw = open(sys.argv[1], 'rb').read()\n\
        raw = gzip.decompress(raw) if raw[:2] == b'\\x1f\\x8b' else raw\n\
        assert struct.unpack('<I', raw[:4])[0] == 0x8199e26d\n\
        pos, docs = 4, []\n\
        while pos < len(raw):\n\
        \x20   (n,) = struct.unpack('<i', raw[pos:pos + 4])\n\
        \x20   if n == -1:\n\
        \x20       docs.append(None); pos += 4; continue\n\
        \x20   docs.append(bson.decode(raw[pos:pos + n])); pos += n\n\
        header, rest = docs[0], docs[1:]\n\
        assert header['version'] == '0.1'\n\
        meta = rest[:rest.index(None)]\n\
        segs, current, counts = rest[rest.index(None) + 1:], None, {}\n\
        for d in segs:\n\
        \x20   if d is None: continue\n\
        \x20   if set(d) >= {'db', 'collection', 'EOF', 'CRC'}:\n\
        \x20       current = d['db'] + '.' + d['collection']; continue\n\
        \x20   counts[current] = counts.get(current, 0) + 1\n\
        print(len(meta), counts[sys.argv[2] + '.items'])\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(archive)
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.trim().ends_with(" 250"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodump_archives_are_written_read_back_and_checked() {
    let deployment = deployment().await;
    let (db, keel, dir) = seeded_backup(&deployment, "archive", "archive-src", true).await;
    let archive = scratch("dump.archive");
    write_archive(&dir, &archive).unwrap();
    let bytes = std::fs::read(&archive).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0x6d, 0xe2, 0x99, 0x81],
        "the magic number, little-endian"
    );

    let back = scratch("archive-back");
    let manifest = read_archive(&archive, &back).unwrap();
    assert_eq!(manifest.documents(), 251);
    verify(&back).unwrap();
    let original = Manifest::read(&dir).unwrap();
    for (a, b) in original.namespaces.iter().zip(&manifest.namespaces) {
        assert_eq!((&a.collection, a.count), (&b.collection, b.count));
        assert_eq!(a.documents_digest, b.documents_digest, "{}", a.collection);
        assert_eq!(a.indexes_digest, b.indexes_digest, "{}", a.collection);
    }
    let restored = format!("{db}_a");
    Restore::from(&back)
        .drop(true)
        .rename(db.clone(), restored.clone())
        .into(&keel)
        .await
        .unwrap();
    assert_eq!(
        all(&deployment.uri, &restored, "items").await,
        (0..250).map(every_type).collect::<Vec<_>>()
    );

    // `--archive --gzip`: the whole stream gzip'd, read back without being told.
    let gz = scratch("dump.archive.gz");
    write_archive_with(&dir, &gz, true).unwrap();
    let gz_bytes = std::fs::read(&gz).unwrap();
    assert_eq!(&gz_bytes[..2], &[0x1f, 0x8b], "gzip's magic");
    assert!(gz_bytes.len() < bytes.len(), "compressed");
    let gz_back = scratch("archive-gz-back");
    let from_gz = read_archive(&gz, &gz_back).unwrap();
    assert_eq!(
        from_gz.namespaces, manifest.namespaces,
        "the same content as the plain archive"
    );
    verify(&gz_back).unwrap();
    pymongo_decodes_the_archive(&archive, &db);
    pymongo_decodes_the_archive(&gz, &db);
    let mut cut_gz = gz_bytes.clone();
    cut_gz.truncate(gz_bytes.len() / 2);
    let cut_gz_path = scratch("cut.archive.gz");
    std::fs::write(&cut_gz_path, &cut_gz).unwrap();
    assert!(read_archive(&cut_gz_path, &scratch("cut-gz-back")).is_err());

    // A changed byte inside a document (still valid BSON): the namespace's CRC catches it.
    let needle = b"doc 100 ";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut changed = bytes.clone();
    changed[at + 4] = b'9';
    let damaged = scratch("changed.archive");
    std::fs::write(&damaged, &changed).unwrap();
    let out = scratch("changed-back");
    let error = read_archive(&damaged, &out).unwrap_err().to_string();
    assert!(error.contains("do not match their CRC"), "{error}");
    assert!(!out.exists(), "nothing is left of a refused archive");

    // A truncated archive.
    let cut = scratch("cut.archive");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    let error = read_archive(&cut, &scratch("cut-back"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("archive"), "{error}");
    // Not an archive at all.
    let error = read_archive(&dir.join("manifest.json"), &scratch("not"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("magic number"), "{error}");
}

/// A restored document changed before its batch is read back fails the restore, both when the
/// batches are read back while the restore writes (integer `_id`s in order) and when the file's
/// `_id`s give no ranges (ints then ObjectIds) and the collection is read back whole at the end.
/// The restore is held at its first batch's progress event (a channel of one, already full)
/// while the test changes a document of the second batch, which is written by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_changed_in_the_target_fails_the_restore_streamed_or_whole() {
    let deployment = deployment().await;
    let db = db_name("changed");
    let client = mongodb::Client::with_uri_str(&deployment.uri)
        .await
        .unwrap();
    let _ = client.database(&db).drop().await;
    let keel = keel(&deployment.uri).await;
    for coll in ["ints", "mixed"] {
        let docs = (0..250).map(|i| match (coll, i < 125) {
            ("mixed", false) => doc! {"_id": ObjectId::new(), "v": i},
            _ => doc! {"_id": i, "v": i},
        });
        client
            .database(&db)
            .collection::<Document>(coll)
            .insert_many(docs)
            .await
            .unwrap();
        let dir = scratch(&format!("changed-{coll}"));
        Backup::builder(keel.clone())
            .include([format!("{db}.{coll}")])
            .to(&dir)
            .run()
            .await
            .unwrap();
        let target = format!("{db}_{coll}");
        let (sender, mut events) = tokio::sync::mpsc::channel(1);
        let restore = {
            let (keel, db, target) = (keel.clone(), db.clone(), target.clone());
            tokio::spawn(async move {
                Restore::from(&dir)
                    .drop(true)
                    .rename(db, target)
                    .batch_size(50)
                    .progress(sender)
                    .into(&keel)
                    .await
            })
        };
        // `Planned` fills the channel; the restore then waits at its first batch's event, with
        // the second batch written (it is in flight by then).
        let restored = client.database(&target).collection::<Document>(coll);
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while restored.count_documents(doc! {}).await.unwrap() < 100 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the first two batches are written");
        let changed = restored
            .update_one(doc! {"_id": 70}, doc! {"$set": {"v": -1}})
            .await
            .unwrap();
        assert_eq!(changed.modified_count, 1, "{coll}");
        while events.recv().await.is_some() {}
        let error = restore.await.unwrap().unwrap_err();
        assert!(
            matches!(&error, BackupError::RestoreFailed { message, .. }
                if message.contains("250 documents") && message.contains("differs from")),
            "{coll}: {error}"
        );
        let _ = client.database(&target).drop().await;
    }
    let _ = client.database(&db).drop().await;
}
