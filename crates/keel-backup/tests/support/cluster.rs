//! A deployment to back up: `KEEL_TEST_URI` when set, else a keel-testkit server; a Keel on
//! it; scratch directories; reading a collection back in `_id` order.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::TryStreamExt as _;
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};

/// A fresh path `name` inside a directory of its own under the temp dir (`prefix` names the
/// test file, so leftovers say where they came from).
pub(crate) fn scratch(prefix: &str, name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    base.join(name)
}

/// A replica set: `KEEL_TEST_URI` if it is one (else `None`: the test says why it skips), or a
/// one-member testkit set with an oplog of `oplog` entries.
pub(crate) async fn replica_set(oplog: usize) -> Option<(Option<TestServer>, String)> {
    if let Ok(uri) = std::env::var("KEEL_TEST_URI") {
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let hello = client
            .database("admin")
            .run_command(doc! {"hello": 1})
            .await
            .unwrap();
        if !hello.contains_key("setName") {
            println!("SKIPPED: KEEL_TEST_URI is not a replica set; change streams need one");
            return None;
        }
        return Some((None, uri));
    }
    let rs = TestServer::builder()
        .replica_set("rs0", 1)
        .oplog_size(oplog)
        .start()
        .await
        .unwrap();
    let uri = rs.uri();
    Some((Some(rs), uri))
}

/// A Keel with the development configuration.
pub(crate) async fn keel(uri: &str) -> Keel {
    let config = KeelConfig::development(uri).unwrap();
    Keel::builder(config).build().await.unwrap()
}

/// Every document of `db.coll`, in `_id` order.
pub(crate) async fn all(client: &mongodb::Client, db: &str, coll: &str) -> Vec<Document> {
    client
        .database(db)
        .collection::<Document>(coll)
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Any deployment: `KEEL_TEST_URI` when set, else a standalone testkit server.
pub(crate) async fn any_deployment() -> (Option<TestServer>, String) {
    match std::env::var("KEEL_TEST_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let server = TestServer::start().await.unwrap();
            let uri = server.uri();
            (Some(server), uri)
        }
    }
}

/// `db.items` filled with `n` documents of a `pad` string, then a gzip'd backup of `db` in
/// `dir`; returns a client and the Keel that made it.
pub(crate) async fn seeded_gzip_backup(
    uri: &str,
    db: &str,
    n: i32,
    pad: &str,
    dir: &std::path::Path,
) -> (mongodb::Client, Keel) {
    let client = mongodb::Client::with_uri_str(uri).await.unwrap();
    client
        .database(db)
        .collection::<Document>("items")
        .insert_many((0..n).map(|i| doc! {"_id": i, "pad": pad}))
        .await
        .unwrap();
    let keel = keel(uri).await;
    keel_backup::Backup::builder(keel.clone())
        .include([db.to_owned()])
        .to(dir)
        .gzip(true)
        .run()
        .await
        .unwrap();
    (client, keel)
}

/// How many documents `db.coll` holds.
pub(crate) async fn count(client: &mongodb::Client, db: &str, coll: &str) -> u64 {
    client
        .database(db)
        .collection::<Document>(coll)
        .count_documents(doc! {})
        .await
        .unwrap()
}

/// A replica set of `members` (at least 2, so a primary can step down): a testkit set, or
/// `KEEL_TEST_URI` when that is a replica set with a secondary (else `None`, saying why).
pub(crate) async fn replica_set_of(members: usize) -> Option<(Option<TestServer>, String)> {
    if let Ok(uri) = std::env::var("KEEL_TEST_URI") {
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let hello = client
            .database("admin")
            .run_command(doc! {"hello": 1})
            .await
            .unwrap();
        let hosts = hello.get_array("hosts").map_or(0, Vec::len);
        if hosts < 2 {
            println!("SKIPPED: KEEL_TEST_URI is not a replica set with a secondary to take over");
            return None;
        }
        return Some((None, uri));
    }
    let rs = TestServer::builder()
        .replica_set("rs0", members)
        .start()
        .await
        .unwrap();
    let uri = rs.uri();
    Some((Some(rs), uri))
}

/// Runs `work` (a backup or a restore, given the progress sender) on its own task and, once,
/// when `namespace` has reached `at` documents, awaits `during` while the work waits: the
/// progress channel holds one event, so the work cannot run more than a batch ahead. Returns
/// the work's result, the `Planned` namespaces and whether `during` ran.
pub(crate) async fn when_namespace_reaches<T, W, D>(
    namespace: &str,
    at: u64,
    work: impl FnOnce(tokio::sync::mpsc::Sender<keel_backup::Progress>) -> W,
    during: impl FnOnce() -> D,
) -> (T, Option<Vec<(String, u64)>>, bool)
where
    W: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
    D: std::future::Future<Output = ()>,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(work(tx));
    let mut during = Some(during);
    let mut planned = None;
    while let Some(event) = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("progress within 30 s")
    {
        match event {
            keel_backup::Progress::Planned { namespaces } => planned = Some(namespaces),
            keel_backup::Progress::Namespace {
                namespace: ns,
                documents,
                done: false,
                ..
            } if ns == namespace && documents >= at => {
                if let Some(during) = during.take() {
                    during().await;
                }
            }
            _ => {}
        }
    }
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), task)
        .await
        .expect("the work finishes within 60 s")
        .unwrap();
    (result, planned, during.is_none())
}

/// A backup running on its own task.
pub(crate) type BackupRun = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<keel_backup::Manifest, keel_backup::BackupError>>
            + Send,
    >,
>;

/// A backup of `include` into `dir` that reads 10 documents a batch, one collection at a
/// time, reporting to the sender: slow enough for a test to act in the middle of a
/// collection.
pub(crate) fn batch_by_batch_backup(
    keel: &Keel,
    include: Vec<String>,
    dir: &std::path::Path,
) -> impl FnOnce(tokio::sync::mpsc::Sender<keel_backup::Progress>) -> BackupRun {
    let keel = keel.clone();
    let dir = dir.to_owned();
    move |tx| {
        Box::pin(
            keel_backup::Backup::builder(keel)
                .include(include)
                .to(dir)
                .batch_size(10)
                .parallelism(1)
                .progress(tx)
                .run(),
        )
    }
}

/// One namespace as a test compares it: name, type, `listCollections` options, index names
/// and keys (none for a view), documents in `_id` order.
pub(crate) type NamespaceState = (String, String, Document, Vec<Document>, Vec<Document>);

/// What a database looks like, namespace by namespace in name order; `system.*` is left out
/// (its `system.views` documents name their own database).
pub(crate) async fn state(client: &mongodb::Client, db: &str) -> Vec<NamespaceState> {
    let database = client.database(db);
    let mut out = Vec::new();
    let specs: Vec<Document> = database
        .run_cursor_command(doc! {"listCollections": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    for spec in specs {
        let name = spec.get_str("name").unwrap().to_owned();
        if name.starts_with("system.") {
            continue;
        }
        let kind = spec.get_str("type").unwrap_or("collection").to_owned();
        let options = spec.get_document("options").cloned().unwrap_or_default();
        let mut indexes = Vec::new();
        if kind != "view" {
            indexes = database
                .run_cursor_command(doc! {"listIndexes": &name})
                .await
                .unwrap()
                .try_collect::<Vec<Document>>()
                .await
                .unwrap()
                .into_iter()
                .map(|i| doc! {"name": i.get_str("name").unwrap(), "key": i.get_document("key").unwrap()})
                .collect();
            indexes.sort_by_key(|i| i.get_str("name").unwrap().to_owned());
        }
        let documents = all(client, db, &name).await;
        out.push((name, kind, options, indexes, documents));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
