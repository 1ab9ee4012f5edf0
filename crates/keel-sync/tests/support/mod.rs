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

/// A database of this test's own.
pub(crate) fn database(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "keel_sync_{test}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A replica set for the test: `KEEL_TEST_URI` when set (a real deployment; it must be a
/// replica set), else a one-member keel-testkit set. The server handle is `None` for a real
/// deployment: tests that need to stop or fault it skip there, saying why.
pub(crate) async fn replica_set() -> (Option<keel_testkit::TestServer>, String) {
    match std::env::var("KEEL_TEST_URI") {
        Ok(uri) if !uri.is_empty() => (None, uri),
        _ => {
            let server = keel_testkit::TestServer::replica_set("rs0", 1)
                .await
                .unwrap();
            let uri = server.uri();
            (Some(server), uri)
        }
    }
}

/// Whether the tests run against a real deployment (`KEEL_TEST_URI`).
pub(crate) fn real_server() -> bool {
    std::env::var("KEEL_TEST_URI").is_ok_and(|uri| !uri.is_empty())
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
