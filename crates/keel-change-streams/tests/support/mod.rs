//! Shared setup for the consumer tests: a one-member replica set, a Keel on it, a recording
//! handler, and waits with timeouts (never sleeps).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

pub const WAIT: Duration = Duration::from_secs(20);

/// Where the tests run: an in-process keel-testkit replica set, or the real replica set named
/// by `KEEL_TEST_URI` (each test then in a database of its own, see [`db`]).
pub enum Rs {
    Testkit(TestServer),
    Real {
        uri: String,
        /// Held from this test's first fail point to its end, see [`FAIL_POINTS`].
        fail_points: Mutex<Option<tokio::sync::OwnedMutexGuard<()>>>,
    },
}

/// A server has one `failCommand` fail point: `configureFailPoint` replaces whatever another
/// test set (the `appName` filter only says whose commands it hits). Tests running at once
/// against `KEEL_TEST_URI` therefore take turns with fail points: a test holds this from its
/// first fail point to its end. Before, two tests of `tests/split.rs` replaced each other's
/// fail point and one waited forever for the error it had set up.
static FAIL_POINTS: std::sync::LazyLock<Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Arc::default);

/// The deployment of one test: `KEEL_TEST_URI` when set, else a one-member testkit replica set
/// whose oplog keeps `oplog` changes (a real server's oplog is what it is).
pub async fn replica_set(oplog: usize) -> Rs {
    if let Ok(uri) = std::env::var("KEEL_TEST_URI") {
        // What an earlier run of this test left behind.
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        client.database(&db()).drop().await.unwrap();
        return Rs::Real {
            uri,
            fail_points: Mutex::new(None),
        };
    }
    Rs::Testkit(
        TestServer::builder()
            .replica_set("rs0", 1)
            .oplog_size(oplog)
            .start()
            .await
            .unwrap(),
    )
}

impl Rs {
    pub fn uri(&self) -> String {
        match self {
            Self::Testkit(server) => server.uri(),
            Self::Real { uri, .. } => uri.clone(),
        }
    }

    pub fn is_real(&self) -> bool {
        matches!(self, Self::Real { .. })
    }

    /// The testkit server, for what only it can do (restart, a tiny oplog, addresses for a
    /// fault proxy); against `KEEL_TEST_URI` prints why the test is skipped and gives `None`.
    pub fn testkit(&self, why: &str) -> Option<&TestServer> {
        match self {
            Self::Testkit(server) => Some(server),
            Self::Real { .. } => {
                println!("skipped against KEEL_TEST_URI: {why}");
                None
            }
        }
    }

    /// Sets a fail point: on the testkit directly, on a real server with `configureFailPoint`
    /// (needs `enableTestCommands=1`, as mongod's own tests run).
    pub fn fail_command(&self, fail: keel_testkit::FailCommand) -> Result<(), String> {
        match self {
            Self::Testkit(server) => server.fail_command(fail).map_err(|e| e.to_string()),
            Self::Real { uri, fail_points } => {
                // Only this test's connections (its Keel names itself after the test's
                // database): tests share the server, and fail points are server-wide.
                let (uri, command) = (uri.clone(), fail.app_name(db()).to_command());
                let mut held = fail_points.lock().unwrap();
                if held.is_none() {
                    // Blocking, so on a thread of its own (callers are on a runtime).
                    let lock = Arc::clone(&FAIL_POINTS);
                    let guard = std::thread::spawn(move || lock.blocking_lock_owned())
                        .join()
                        .map_err(|_| "the fail point lock thread panicked".to_owned())?;
                    *held = Some(guard);
                }
                drop(held);
                // On a thread of its own: callers may be on a current-thread runtime.
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime.block_on(async move {
                        let client = mongodb::Client::with_uri_str(&uri)
                            .await
                            .map_err(|e| e.to_string())?;
                        let set = client
                            .database("admin")
                            .run_command(command)
                            .await
                            .map(drop)
                            .map_err(|e| e.to_string());
                        client.shutdown().await;
                        set
                    })
                })
                .join()
                .map_err(|_| "the fail point thread panicked".to_owned())?
            }
        }
    }
}

/// The test's database: `app` on the testkit (one server per test); against `KEEL_TEST_URI`
/// `keel_<test name>`, so tests running at once on one server never share a collection. Call
/// it from the test's own thread (the test harness names it after the test).
pub fn db() -> String {
    // A child process of a crash test works in its parent's database.
    if let Ok(db) = std::env::var("KEEL_TEST_DB") {
        return db;
    }
    if std::env::var_os("KEEL_TEST_URI").is_none() {
        return "app".to_owned();
    }
    let name = std::thread::current()
        .name()
        .unwrap_or("main")
        .rsplit("::")
        .next()
        .unwrap_or("main")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(50)
        .collect::<String>();
    format!("keel_{name}")
}

pub fn config(uri: &str) -> keel_config::KeelConfig {
    let mut config = keel_config::KeelConfig::development(uri).unwrap();
    for (path, value) in [
        ("heartbeat", "500ms"),
        ("timeouts.connect", "1s"),
        ("timeouts.server_selection", "1s"),
        ("timeouts.attempt", "3s"),
        ("timeouts.checkout_wait", "1s"),
        ("timeouts.deadline", "6s"),
        ("retry.initial_backoff", "20ms"),
        ("retry.max_backoff", "200ms"),
        ("breaker.open_wait", "500ms"),
    ] {
        config.set(path, value).unwrap();
    }
    if std::env::var_os("KEEL_TEST_URI").is_some() {
        config.set("app_name", &db()).unwrap();
    }
    config.validate().unwrap();
    config
}

pub async fn keel(uri: &str) -> Keel {
    Keel::builder(config(uri)).build().await.unwrap()
}

/// The `_id`s of the inserted documents a handler saw, in order, with their event ids.
#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<(i32, Document)>>>);

impl Seen {
    pub fn push(&self, id: i32, event_id: Document) {
        self.0.lock().unwrap().push((id, event_id));
    }
    pub fn ids(&self) -> Vec<i32> {
        self.0.lock().unwrap().iter().map(|(i, _)| *i).collect()
    }
    pub async fn wait_for(&self, what: &str, f: impl Fn(&[i32]) -> bool) {
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                if f(&self.ids()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out waiting for {what}; seen {:?}",
            self.ids()
        );
    }
    /// Inserts `range` (through [`insert`]) and waits until every id below its end was seen.
    pub async fn insert_and_see(&self, keel: &Keel, range: std::ops::Range<i32>, what: &str) {
        let end = range.end;
        insert(keel, range).await;
        self.wait_for(what, |ids| all_seen(ids, end)).await;
    }
}

pub async fn insert(keel: &Keel, range: std::ops::Range<i32>) {
    insert_in(keel, &db(), range).await;
}

/// [`insert`] into `db`'s `orders` (for a spawned task, whose thread is not the test's).
pub async fn insert_in(keel: &Keel, db: &str, range: std::ops::Range<i32>) {
    let orders = keel.collection::<Document>(db, "orders");
    for i in range {
        orders.insert_one(doc! {"_id": i, "n": i}).await.unwrap();
    }
}

/// Every id in `0..n` seen at least once.
pub fn all_seen(ids: &[i32], n: i32) -> bool {
    (0..n).all(|i| ids.contains(&i))
}

/// Seen ids are in server order (each first sighting after the previous one's).
pub fn first_sightings_in_order(ids: &[i32]) -> bool {
    let mut firsts = Vec::new();
    for id in ids {
        if !firsts.contains(id) {
            firsts.push(*id);
        }
    }
    firsts.windows(2).all(|w| w[0] < w[1])
}

/// The `_id` in an event's `documentKey` (the tests' documents have `i32` ids).
pub fn doc_id(event: &keel_change_streams::ChangeEvent<Document>) -> Option<i32> {
    event
        .document_key
        .as_ref()
        .and_then(|k| k.get_i32("_id").ok())
}

/// A consumer `name` of `db().orders` that records each event's id in `seen`.
pub fn recording(
    keel: Keel,
    name: &str,
    seen: &Seen,
) -> keel_change_streams::ChangeConsumerBuilder<Document> {
    let seen = seen.clone();
    keel_change_streams::ChangeConsumer::<Document>::builder(keel, name)
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .handler(move |event| {
            let seen = seen.clone();
            async move {
                if let Some(id) = doc_id(&event) {
                    seen.push(id, event.event_id().clone());
                }
                Ok::<_, String>(())
            }
        })
}

/// Waits (with a timeout) until the consumer's status is `status`.
pub async fn reaches(
    consumer: &keel_change_streams::RunningConsumer,
    status: keel_change_streams::ConsumerStatus,
) {
    let mut rx = consumer.status();
    let ok = tokio::time::timeout(WAIT, rx.wait_for(|s| *s == status))
        .await
        .map(|r| r.is_ok());
    assert_eq!(ok, Ok(true), "never reached {status:?}: {:?}", *rx.borrow());
}

/// Waits until the consumer runs.
pub async fn running(consumer: &keel_change_streams::RunningConsumer) {
    reaches(consumer, keel_change_streams::ConsumerStatus::Running).await;
}

/// A testkit replica set for a test only the testkit can run (`why` is printed and `None`
/// given against `KEEL_TEST_URI`).
pub async fn testkit_only(oplog: usize, why: &str) -> Option<Rs> {
    let rs = replica_set(oplog).await;
    rs.testkit(why)?;
    Some(rs)
}

/// The server's `serverStatus.opcounters.command` (every command but CRUD and `getMore`).
pub async fn server_commands(keel: &Keel) -> i64 {
    opcounter(keel, "command").await
}

/// The server's `serverStatus.opcounters.{name}`.
pub async fn opcounter(keel: &Keel, name: &'static str) -> i64 {
    let reply = keel
        .run(keel_core::Operation::command(
            "test.server_status",
            true,
            |c| async move {
                c.database("admin")
                    .run_command(doc! {"serverStatus": 1})
                    .await
            },
        ))
        .await
        .unwrap();
    let counters = reply.get_document("opcounters").unwrap();
    counters
        .get_i64(name)
        .or_else(|_| counters.get_i32(name).map(i64::from))
        .unwrap()
}

/// A handler backoff of 1 to 5 ms, so retries take no time in a test.
pub fn fast_backoff() -> keel_retry::BackoffConfig {
    keel_retry::BackoffConfig {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
        ..keel_retry::BackoffConfig::default()
    }
}

/// `max_attempts` handler attempts with [`fast_backoff`].
pub fn fast_retry(max_attempts: u32) -> keel_change_streams::HandlerRetry {
    keel_change_streams::HandlerRetry {
        max_attempts,
        backoff: fast_backoff(),
    }
}

/// A consumer `name` of `db().orders` whose handler fails every event once with "downstream
/// is down" (one attempt), under the default failure policy: it stops.
pub fn always_failing(
    keel: Keel,
    name: &str,
) -> keel_change_streams::ChangeConsumerBuilder<Document> {
    keel_change_streams::ChangeConsumer::<Document>::builder(keel, name)
        .collection(&db(), "orders")
        .handler_retry(fast_retry(1))
        .handler(|_e| async { Err("downstream is down") })
}

/// The error the consumer stops with by itself (within [`WAIT`]).
pub async fn stop_error(consumer: keel_change_streams::RunningConsumer) -> keel_core::Error {
    tokio::time::timeout(WAIT, consumer.wait())
        .await
        .expect("the consumer did not stop")
        .expect_err("the consumer stopped without an error")
}

/// Waits until the consumer handled `n` events.
pub async fn until_handled(consumer: &keel_change_streams::RunningConsumer, n: u64) {
    let waited = tokio::time::timeout(WAIT, async {
        while consumer.stats().handled() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "handled {} of {n}",
        consumer.stats().handled()
    );
}

/// A memory store that also records every token it stored, in order (clones share both).
#[derive(Clone, Default)]
pub struct RecordingStore {
    pub inner: keel_change_streams::MemoryCheckpointStore,
    pub committed: Arc<Mutex<Vec<Document>>>,
}

impl RecordingStore {
    pub fn tokens(&self) -> Vec<Document> {
        self.committed.lock().unwrap().clone()
    }
}

impl keel_change_streams::CheckpointStore for RecordingStore {
    fn load<'a>(
        &'a self,
        consumer: &'a str,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<Option<keel_change_streams::Checkpoint>, keel_core::Error>,
    > {
        self.inner.load(consumer)
    }
    fn commit<'a>(
        &'a self,
        consumer: &'a str,
        expected: u64,
        token: &'a Document,
        cluster_time: Option<mongodb::bson::Timestamp>,
        fence: Option<u64>,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<keel_change_streams::Checkpoint, keel_change_streams::CommitError>,
    > {
        use futures_util::FutureExt;
        async move {
            let stored = self
                .inner
                .commit(consumer, expected, token, cluster_time, fence)
                .await?;
            self.committed.lock().unwrap().push(token.clone());
            Ok(stored)
        }
        .boxed()
    }
    fn clear<'a>(
        &'a self,
        consumer: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), keel_core::Error>> {
        self.inner.clear(consumer)
    }
}

/// Every event a handler saw (clones share them).
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<keel_change_streams::ChangeEvent<Document>>>>);

impl Events {
    pub fn push(&self, event: keel_change_streams::ChangeEvent<Document>) {
        self.0.lock().unwrap().push(event);
    }
    pub fn all(&self) -> Vec<keel_change_streams::ChangeEvent<Document>> {
        self.0.lock().unwrap().clone()
    }
    /// The inserted `_id`s, in order.
    pub fn ids(&self) -> Vec<i32> {
        self.all().iter().filter_map(doc_id).collect()
    }
    pub async fn wait_for(&self, n: usize) {
        let waited = tokio::time::timeout(WAIT, async {
            while self.0.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out waiting for {n} events; got {:?}",
            self.ids()
        );
    }
}

/// A consumer `name` of `db().orders` that keeps every event in `events`.
pub fn keeping(
    keel: Keel,
    name: &str,
    events: &Events,
) -> keel_change_streams::ChangeConsumerBuilder<Document> {
    let events = events.clone();
    keel_change_streams::ChangeConsumer::<Document>::builder(keel, name)
        .collection(&db(), "orders")
        .max_await_time(Duration::from_millis(100))
        .handler(move |event| {
            let events = events.clone();
            async move {
                events.push(event);
                Ok::<_, String>(())
            }
        })
}
