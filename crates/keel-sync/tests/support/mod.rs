//! Shared helpers of keel-sync's tests: a Keel on a testkit server (or `KEEL_TEST_URI`), store
//! paths, and awaiting a state with a timeout.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use keel_config::KeelConfig;
use mongokeel::Keel;

/// How long a test waits for a state before failing (bounds a hang, measures nothing).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh store path under the temporary directory.
pub(crate) fn store_path(test: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "keel-sync-tests-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // A directory of an earlier test process with the same (reused) pid: its store would give
    // this test documents it never wrote. That process is gone, so its files can go.
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot clear {}: {e}", dir.display()),
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{test}.redb"))
}

/// Test timeouts: faults show within a second or two.
pub(crate) fn config(uri: &str) -> KeelConfig {
    let mut config = KeelConfig::development(uri).unwrap();
    for (path, value) in [
        ("heartbeat", "500ms"),
        ("timeouts.connect", "1s"),
        ("timeouts.server_selection", "1s"),
        ("timeouts.attempt", "2s"),
        ("timeouts.checkout_wait", "1s"),
        ("timeouts.deadline", "6s"),
        ("retry.initial_backoff", "20ms"),
        ("retry.max_backoff", "200ms"),
        ("breaker.open_wait", "500ms"),
    ] {
        config.set(path, value).unwrap();
    }
    config.validate().unwrap();
    config
}

pub(crate) async fn keel(uri: &str) -> Keel {
    Keel::builder(config(uri)).build().await.unwrap()
}

/// A Keel that does not connect at start (for a client that starts offline).
pub(crate) async fn lazy_keel(uri: &str) -> Keel {
    let mut config = config(uri);
    config.set("lazy_connect", "true").unwrap();
    config.validate().unwrap();
    Keel::builder(config).build().await.unwrap()
}

/// Awaits `condition` (polled on every status change and every 10 ms) within [`PATIENCE`].
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what} did not happen within {PATIENCE:?}");
}

/// Awaits `actual()` to equal `expected` within [`PATIENCE`]; the failure shows the last value
/// seen, so a state that settled somewhere else says where.
pub(crate) async fn eventually_equals<T: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: &T,
    mut actual: impl FnMut() -> T,
) {
    let mut last = actual();
    let waited = tokio::time::timeout(PATIENCE, async {
        while last != *expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
            last = actual();
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{what} did not happen within {PATIENCE:?}: expected {expected:?}, last seen {last:?}"
    );
}

/// A database of this test's own.
pub(crate) fn database(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "keel_sync_{test}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The server a test runs against: a keel-testkit server, or the deployment given by
/// `KEEL_TEST_URI` (then `testkit` is `None`). Tests share a real deployment by using their own
/// database ([`database`]).
pub(crate) struct Deployment {
    /// The in-process server, when the test runs against keel-testkit.
    pub(crate) testkit: Option<keel_testkit::TestServer>,
    pub(crate) uri: String,
}

impl Deployment {
    /// A driver client of its own (what another application would see).
    pub(crate) async fn raw(&self) -> mongodb::Client {
        mongodb::Client::with_uri_str(&self.uri).await.unwrap()
    }

    /// The document `id` of `db.coll` as the server has it.
    pub(crate) async fn doc(
        &self,
        db: &str,
        coll: &str,
        id: impl Into<mongodb::bson::Bson>,
    ) -> Option<mongodb::bson::Document> {
        server_doc(&self.uri, db, coll, id).await
    }

    /// A client builder on a Keel with the test timeouts and a fresh store named `name`.
    pub(crate) async fn client(&self, name: &str) -> keel_sync::SyncClientBuilder {
        keel_sync::SyncClient::builder(
            keel(&self.uri).await,
            keel_sync::Store::open(store_path(name)).unwrap(),
        )
    }
}

/// The document `id` of `db.coll` as the server at `uri` has it.
pub(crate) async fn server_doc(
    uri: &str,
    db: &str,
    coll: &str,
    id: impl Into<mongodb::bson::Bson>,
) -> Option<mongodb::bson::Document> {
    mongodb::Client::with_uri_str(uri)
        .await
        .unwrap()
        .database(db)
        .collection::<mongodb::bson::Document>(coll)
        .find_one(mongodb::bson::doc! { "_id": id.into() })
        .await
        .unwrap()
}

fn real_uri() -> Option<String> {
    std::env::var("KEEL_TEST_URI")
        .ok()
        .filter(|uri| !uri.is_empty())
}

/// `KEEL_TEST_URI` when set (any deployment), else a standalone keel-testkit server.
pub(crate) async fn server() -> Deployment {
    match real_uri() {
        Some(uri) => Deployment { testkit: None, uri },
        None => testkit_deployment(keel_testkit::TestServer::start().await.unwrap()),
    }
}

/// A replica set: `KEEL_TEST_URI` when set (it must be a replica set), else a one-member
/// keel-testkit set.
pub(crate) async fn replica_set() -> Deployment {
    match real_uri() {
        Some(uri) => Deployment { testkit: None, uri },
        None => testkit_deployment(
            keel_testkit::TestServer::replica_set("rs0", 1)
                .await
                .unwrap(),
        ),
    }
}

fn testkit_deployment(server: keel_testkit::TestServer) -> Deployment {
    let uri = server.uri();
    Deployment {
        testkit: Some(server),
        uri,
    }
}

/// A standalone keel-testkit server for a test that must stop, restart, fault or step down its
/// server; `None` with `KEEL_TEST_URI`, after printing why the test skips (`needs`: what the
/// test does that a real deployment cannot be asked to do).
pub(crate) async fn testkit(needs: &str) -> Option<keel_testkit::TestServer> {
    if skips_on_real_server(needs) {
        return None;
    }
    Some(keel_testkit::TestServer::start().await.unwrap())
}

/// `true` (after printing why) when the tests run against a real deployment, which the
/// calling test cannot use (`needs`: what it does that only keel-testkit can).
pub(crate) fn skips_on_real_server(needs: &str) -> bool {
    if real_server() {
        println!(
            "skipped against KEEL_TEST_URI: this test {needs}, which only keel-testkit can do"
        );
        return true;
    }
    false
}

/// Whether the tests run against a real deployment (`KEEL_TEST_URI`).
pub(crate) fn real_server() -> bool {
    real_uri().is_some()
}

/// Cuts `client` off at `proxy` (open connections reset, new ones refused) and waits until it
/// reports itself offline: from then on none of its requests reaches the server.
pub(crate) async fn cut_off(proxy: &keel_testkit::FaultProxy, client: &keel_sync::SyncClient) {
    proxy.refuse_new(true).await.unwrap();
    proxy.reset_all();
    eventually("the client goes offline", || {
        client.status().borrow().connectivity == keel_sync::Connectivity::Offline
    })
    .await;
}

/// Where nothing listens: a client on it is offline from the start.
pub(crate) const NOWHERE: &str = "mongodb://127.0.0.1:9/?connectTimeoutMS=200";

/// A client that starts (and stays) offline, over the store at `path`, with `app.notes`
/// subscribed.
pub(crate) async fn offline_client(
    store: keel_sync::Store,
) -> (
    keel_sync::SyncClient,
    keel_sync::SyncedCollection<mongodb::bson::Document>,
) {
    let client = keel_sync::SyncClient::builder(lazy_keel(NOWHERE).await, store)
        .build()
        .unwrap();
    let notes = client
        .collection::<mongodb::bson::Document>("app", "notes")
        .subscribe(mongodb::bson::doc! {});
    (client, notes)
}

/// A multi-threaded runtime for the tests that drive child processes from a plain `#[test]`.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A count from the environment (`var`), else `default`: CI runs few trials, a soak more.
pub(crate) fn count_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Awaits the store file being free (the previous client's task lets go of it once it notices
/// the client is gone) and opens it.
pub(crate) async fn reopen(path: &std::path::Path) -> keel_sync::Store {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match keel_sync::Store::open(path) {
                Ok(store) => break store,
                Err(keel_sync::SyncError::StoreLocked { .. }) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("the previous client lets go of the store")
}
