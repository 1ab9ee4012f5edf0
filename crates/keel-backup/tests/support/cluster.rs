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
