//! Support for Keel's end-to-end tests: one [`Deployment`] that is a fresh keel-testkit server
//! by default, or the real MongoDB named by `KEEL_TEST_URI`, so the same tests run against both.
//!
//! Tests that need what only the testkit can do (stop and restart the server) call
//! [`Deployment::testkit`] and skip, saying why, against a real server. Network faults go
//! through a [`FaultProxy`] in front of either; each test works in its own database, dropped at
//! the end, so runs against a shared deployment do not collide.

use std::{
    net::{SocketAddr, ToSocketAddrs},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use keel_config::KeelConfig;
use keel_testkit::{FaultProxy, TestServer};

/// The environment variable that points the tests at a real deployment.
pub const TEST_URI_VAR: &str = "KEEL_TEST_URI";

/// How long a test waits for a state it expects (a reconnect, a breaker closing) before it
/// fails. Generous: it bounds a hang, it does not measure speed.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Where the tests run.
#[derive(Debug)]
pub enum Deployment {
    /// A keel-testkit server started for this test.
    Testkit(TestServer),
    /// A real deployment from `KEEL_TEST_URI`.
    Real {
        /// The connection string, as given.
        uri: String,
    },
}

/// The real deployment's connection string, when `KEEL_TEST_URI` names one.
fn real_uri() -> Option<String> {
    std::env::var(TEST_URI_VAR)
        .ok()
        .filter(|uri| !uri.trim().is_empty())
}

/// Whether a test that needs what only the testkit can do must skip; prints why when it must.
pub fn skip_against_real(needs: &str) -> bool {
    let skip = real_uri().is_some();
    if skip {
        eprintln!("skipped against {TEST_URI_VAR}: this test needs to {needs}");
    }
    skip
}

impl Deployment {
    /// A fresh testkit server, or the deployment named by `KEEL_TEST_URI`.
    ///
    /// # Panics
    /// When the testkit server cannot start (a test set-up failure).
    pub async fn start() -> Self {
        match real_uri() {
            Some(uri) => Self::Real { uri },
            None => Self::Testkit(
                TestServer::start()
                    .await
                    .unwrap_or_else(|e| panic!("the testkit server did not start: {e}")),
            ),
        }
    }

    /// The connection string.
    pub fn uri(&self) -> String {
        match self {
            Self::Testkit(server) => server.uri(),
            Self::Real { uri } => uri.clone(),
        }
    }

    /// The testkit server, or `None` (after printing why the calling test skips) against a
    /// real deployment.
    pub fn testkit(&self, needs: &str) -> Option<&TestServer> {
        match self {
            Self::Testkit(server) => Some(server),
            Self::Real { .. } => {
                skip_against_real(needs);
                None
            }
        }
    }

    /// A fault proxy in front of the deployment (its first host), and the connection string
    /// that goes through it with `directConnection=true`.
    ///
    /// # Panics
    /// When the proxy cannot start or the real URI cannot be proxied (`mongodb+srv://`).
    pub async fn proxied(&self) -> (FaultProxy, String) {
        let upstream = match self {
            Self::Testkit(server) => server.addr(),
            Self::Real { uri } => first_host(uri),
        };
        let proxy = FaultProxy::start(upstream)
            .await
            .unwrap_or_else(|e| panic!("the fault proxy did not start: {e}"));
        let uri = match self {
            Self::Testkit(_) => proxy.uri(),
            Self::Real { uri } => through(uri, proxy.addr()),
        };
        (proxy, uri)
    }

    /// A database name of this test's own, unique in this process and run.
    pub fn database(&self, test: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "keel_it_{test}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Awaits, by counting through Keel, until `collection` holds at least `n` documents: a
/// background writer's progress.
///
/// # Panics
/// When the count is not reached within [`PATIENCE`].
pub async fn wait_for_count(collection: &mongokeel::Collection<mongodb::bson::Document>, n: u64) {
    tokio::time::timeout(PATIENCE, async {
        while collection
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap_or(0)
            < n
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the writer did not reach {n} documents within {PATIENCE:?}"));
}

/// The `_id`s (each an `i64`) of the documents in `collection`, as found: a writer's stored
/// inserts, to compare with the ones it had acknowledged.
///
/// # Panics
/// When the find fails or a document's `_id` is not an `i64`.
pub async fn stored_ids(collection: &mongokeel::Collection<mongodb::bson::Document>) -> Vec<i64> {
    collection
        .find(mongodb::bson::doc! {})
        .await
        .unwrap_or_else(|e| panic!("reading the stored documents back failed: {e}"))
        .iter()
        .map(|d| {
            d.get_i64("_id")
                .unwrap_or_else(|e| panic!("a stored _id is not an i64: {e}"))
        })
        .collect()
}

/// `find_one({ _id: 1 })` in `items`, which must fail within [`PATIENCE`]; the error.
///
/// # Panics
/// When the call succeeds, or hangs (`why` says why it must not).
pub async fn find_one_fails(
    items: &mongokeel::Collection<mongodb::bson::Document>,
    why: &str,
) -> mongokeel::Error {
    match tokio::time::timeout(PATIENCE, items.find_one(mongodb::bson::doc! { "_id": 1 })).await {
        Ok(Err(err)) => err,
        Ok(Ok(found)) => panic!("the call succeeded ({found:?}) where it had to fail"),
        Err(_) => panic!("{why}"),
    }
}

/// Awaits `keel` reconnecting by itself within [`PATIENCE`] (`expected` says why it should),
/// then checks that `{ _id: 1 }` is found in `items` again: calls go through end to end.
///
/// # Panics
/// When `keel` is not ready in time, or the document is not found.
pub async fn reconnects_and_finds_one(
    keel: &mongokeel::Keel,
    items: &mongokeel::Collection<mongodb::bson::Document>,
    expected: &str,
) {
    match tokio::time::timeout(PATIENCE, keel.ready()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => panic!("{expected}, but it failed: {err}"),
        Err(_) => panic!("{expected}, but it did not within {PATIENCE:?}"),
    }
    let found = items
        .find_one(mongodb::bson::doc! { "_id": 1 })
        .await
        .unwrap_or_else(|e| panic!("{expected}, but the read after failed: {e}"));
    assert!(
        found.is_some(),
        "{{ _id: 1 }} is found again once {expected}"
    );
}

/// Ends the proxy's black hole and drops the connections it held, then awaits `keel`
/// reconnecting by itself and finding `{ _id: 1 }` in `items` again.
///
/// # Panics
/// As [`reconnects_and_finds_one`].
pub async fn heal_black_hole(
    proxy: &FaultProxy,
    keel: &mongokeel::Keel,
    items: &mongokeel::Collection<mongodb::bson::Document>,
) {
    proxy.black_hole(false);
    proxy.reset_all();
    reconnects_and_finds_one(
        keel,
        items,
        "the client reconnects once the network is back",
    )
    .await;
}

/// Development defaults with timeouts sized for tests: short enough that a fault shows within
/// a second or two, long enough for a loaded 2-core CI machine.
///
/// # Panics
/// When `uri` is not a valid connection string.
pub fn test_config(uri: &str) -> KeelConfig {
    let mut config = KeelConfig::development(uri)
        .unwrap_or_else(|e| panic!("test configuration for {TEST_URI_VAR} is invalid: {e}"));
    for (path, value) in [
        ("heartbeat", "500ms"),
        ("timeouts.connect", "1s"),
        ("timeouts.server_selection", "1s"),
        ("timeouts.attempt", "2s"),
        ("timeouts.checkout_wait", "1s"),
        ("timeouts.deadline", "6s"),
        ("retry.initial_backoff", "20ms"),
        ("retry.max_backoff", "200ms"),
        ("breaker.open_wait", "1s"),
    ] {
        config
            .set(path, value)
            .unwrap_or_else(|e| panic!("test setting {path}: {e}"));
    }
    config
        .validate()
        .unwrap_or_else(|e| panic!("test configuration: {e}"));
    config
}

/// The first host of a `mongodb://` connection string, resolved.
fn first_host(uri: &str) -> SocketAddr {
    let Some(rest) = uri.strip_prefix("mongodb://") else {
        panic!("{TEST_URI_VAR} must be a mongodb:// URI to be proxied (mongodb+srv:// is not)");
    };
    let hosts = host_part(rest);
    let first = hosts.split(',').next().unwrap_or(hosts);
    let with_port = if first.contains(':') {
        first.to_owned()
    } else {
        format!("{first}:27017")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve the first host of {TEST_URI_VAR}"))
}

/// The host list of a URI without its scheme: after any credentials, before the path/options.
fn host_part(rest: &str) -> &str {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts)
}

/// `uri` with its hosts replaced by `proxy`, as a direct connection (the proxy is one host).
fn through(uri: &str, proxy: SocketAddr) -> String {
    let rest = uri.trim_start_matches("mongodb://");
    let hosts = host_part(rest);
    let replaced = rest.replacen(hosts, &proxy.to_string(), 1);
    let mut out = format!("mongodb://{replaced}");
    if !out.contains('?') {
        if !replaced.contains('/') {
            out.push('/');
        }
        out.push('?');
    } else {
        out.push('&');
    }
    // Without it, a replica set's members would be discovered and dialled around the proxy.
    // Through the proxy the tests reach the first host only: it must be the primary.
    out.push_str("directConnection=true");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn proxied_uri_keeps_credentials_and_options() {
        let proxy: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            through("mongodb://u:p@db1:27017,db2:27017/app?tls=true", proxy),
            "mongodb://u:p@127.0.0.1:4000/app?tls=true&directConnection=true"
        );
        assert_eq!(
            through("mongodb://localhost", proxy),
            "mongodb://127.0.0.1:4000/?directConnection=true"
        );
    }

    #[test]
    fn host_part_skips_credentials_and_path() {
        assert_eq!(host_part("u:p@a:1,b:2/db?x=1"), "a:1,b:2");
        assert_eq!(host_part("a"), "a");
    }
}
