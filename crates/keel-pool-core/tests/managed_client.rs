//! The managed client against a live keel-testkit server: validation, state machine, reconnect
//! queue, reset, graceful shutdown and pool metrics. States are awaited, never slept for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_core::{ErrorClass, ErrorKind, Operation};
use keel_pool_core::{ConnectionState, ManagedClient, ManagedSettings, MongoService, ResetRefused};
use keel_testkit::{FailCommand, TestServer};
use mongodb::{
    bson::{Document, doc},
    options::ClientOptions,
};
use tower::ServiceExt;

const PATIENCE: Duration = Duration::from_secs(15);

async fn options(uri: &str) -> ClientOptions {
    let mut options = ClientOptions::parse(uri).await.unwrap();
    options.server_selection_timeout = Some(Duration::from_secs(2));
    options.heartbeat_freq = Some(Duration::from_millis(500));
    options.connect_timeout = Some(Duration::from_secs(1));
    options
}

fn settings() -> ManagedSettings {
    let mut settings = ManagedSettings::default();
    settings.reconnect_wait = Duration::from_secs(10);
    // These tests hold calls through a stopped server: a grace as long as the reconnect wait
    // keeps them queued (the default 1 s would fail them fast, as the outage test shows).
    settings.outage_grace = Duration::from_secs(10);
    settings.reset_min_interval = Duration::from_secs(60);
    settings
}

async fn connect(server: &TestServer) -> ManagedClient {
    ManagedClient::connect_with(options(&server.uri()).await, settings())
        .await
        .unwrap()
}

/// A live server, a client connected to it with the test settings, and a service on that
/// client.
async fn start() -> (TestServer, ManagedClient, MongoService) {
    start_with(settings()).await
}

/// [`start`] with other settings.
async fn start_with(settings: ManagedSettings) -> (TestServer, ManagedClient, MongoService) {
    let server = TestServer::start().await.unwrap();
    let client = ManagedClient::connect_with(options(&server.uri()).await, settings)
        .await
        .unwrap();
    let service = MongoService::new(client.clone());
    (server, client, service)
}

/// Stops the server and makes the client meet the dead connection or find no server: the
/// first call after the stop.
async fn stop_server(server: &TestServer, service: &MongoService) {
    server.stop().await;
    let _ = service.clone().oneshot(ping()).await;
}

fn ping() -> Operation<Document> {
    Operation::command("admin.ping", true, |client: mongodb::Client| async move {
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
    })
}

fn insert(id: i32) -> Operation<()> {
    Operation::write(
        "items.insert",
        true,
        move |client: mongodb::Client| async move {
            client
                .database("keel")
                .collection::<Document>("items")
                .insert_one(doc! { "_id": id })
                .await
                .map(|_| ())
        },
    )
}

fn count() -> Operation<u64> {
    Operation::read("items.count", |client: mongodb::Client| async move {
        client
            .database("keel")
            .collection::<Document>("items")
            .count_documents(doc! {})
            .await
    })
}

/// Awaits a state where calls wait instead of running: a stopped server is seen as
/// `Reconnecting` (a dropped connection) and then `Unreachable` (its check failed).
async fn wait_until_not_serving(client: &ManagedClient) {
    let mut states = client.subscribe();
    tokio::time::timeout(
        PATIENCE,
        states.wait_for(|s| {
            matches!(
                s,
                ConnectionState::Reconnecting | ConnectionState::Unreachable
            )
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("the client still serves, state {}", client.state()))
    .unwrap();
}

/// Awaits the moment a spawned call holds its place in the client (checked out or queued).
async fn wait_until_in_flight(client: &ManagedClient) {
    tokio::time::timeout(PATIENCE, async {
        while client.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the spawned call never reached the client");
}

/// Makes the next `count` hold its connection for `delay` before answering.
fn block_next_count(server: &TestServer, delay: Duration) {
    server
        .fail_command(
            FailCommand::new(["count", "aggregate"])
                .times(1)
                .block_connection(delay),
        )
        .unwrap();
}

async fn wait_for_state(client: &ManagedClient, wanted: ConnectionState) {
    let mut states = client.subscribe();
    tokio::time::timeout(PATIENCE, states.wait_for(|s| *s == wanted))
        .await
        .unwrap_or_else(|_| panic!("state never became {wanted}, is {}", client.state()))
        .unwrap();
}

#[tokio::test]
async fn connect_validates_and_serves_operations() {
    let (_server, client, service) = start().await;
    assert_eq!(client.state(), ConnectionState::Connected);
    let reply = service.clone().oneshot(ping()).await.unwrap();
    assert_eq!(
        reply
            .get_f64("ok")
            .or_else(|_| reply.get_i32("ok").map(f64::from))
            .unwrap(),
        1.0
    );
    service.clone().oneshot(insert(1)).await.unwrap();
    assert_eq!(service.oneshot(count()).await.unwrap(), 1);
    assert_eq!(client.in_flight(), 0);
}

#[tokio::test]
async fn start_up_fails_after_the_configured_attempts_with_a_redacted_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let uri = format!("mongodb://keel:T0pSecret@127.0.0.1:{port}/?serverSelectionTimeoutMS=200");
    let mut options = ClientOptions::parse(&uri).await.unwrap();
    options.connect_timeout = Some(Duration::from_millis(200));
    let mut settings = settings();
    settings.connect_attempts = 2;
    settings.connect_backoff = Duration::from_millis(10);
    let err = ManagedClient::connect_with(options, settings)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerSelection);
    assert_eq!(err.attempts(), Some(2));
    assert_eq!(err.stopped_because(), Some("max attempts reached"));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("T0pSecret"), "{shown}");
}

#[tokio::test]
async fn lazy_connect_starts_without_a_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut settings = settings();
    settings.lazy_connect = true;
    let options = options(&format!("mongodb://127.0.0.1:{port}/")).await;
    let client = ManagedClient::connect_with(options, settings)
        .await
        .unwrap();
    assert_eq!(client.state(), ConnectionState::Connecting);
}

#[tokio::test]
async fn outage_queues_requests_and_recovers_when_the_server_returns() {
    let (server, client, service) = start().await;
    service.clone().oneshot(insert(1)).await.unwrap();

    stop_server(&server, &service).await;
    wait_until_not_serving(&client).await;

    // Requests now wait in the reconnect queue instead of failing or waiting 30 s.
    let queued = tokio::spawn(service.clone().oneshot(insert(2)));
    server.restart().await.unwrap();
    wait_for_state(&client, ConnectionState::Connected).await;
    tokio::time::timeout(PATIENCE, queued)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        service.oneshot(count()).await.unwrap(),
        2,
        "acknowledged writes survive"
    );
}

#[tokio::test]
async fn reconnect_queue_is_bounded_and_waits_no_longer_than_the_deadline() {
    let mut settings = settings();
    settings.reconnect_queue = 1;
    let (server, client, service) = start_with(settings).await;
    stop_server(&server, &service).await;
    wait_until_not_serving(&client).await;

    let first = tokio::spawn(
        service
            .clone()
            .oneshot(ping().with_timeout(Duration::from_secs(30))),
    );
    // Wait until the first request holds the only place in the queue.
    wait_until_in_flight(&client).await;
    let overflow = service.clone().oneshot(ping()).await.unwrap_err();
    assert_eq!(overflow.class(), ErrorClass::Overloaded);

    first.abort();
    let _ = first.await;
    let late = service
        .oneshot(ping().with_timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Unreachable);
    assert_eq!(late.class(), ErrorClass::ServerSelection);
}

#[tokio::test]
async fn a_stopped_server_is_unreachable_and_calls_fail_fast_after_the_grace() {
    let mut settings = settings();
    settings.outage_grace = Duration::from_millis(300);
    let (server, client, service) = start_with(settings).await;
    stop_server(&server, &service).await;
    wait_for_state(&client, ConnectionState::Unreachable).await;

    let err = service
        .clone()
        .oneshot(ping().with_timeout(Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.retry_after().is_some(), "{err}");

    server.restart().await.unwrap();
    wait_for_state(&client, ConnectionState::Connected).await;
    service.oneshot(ping()).await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_operations_finish() {
    let (server, client, service) = start().await;
    block_next_count(&server, Duration::from_millis(300));
    let slow = tokio::spawn(service.clone().oneshot(count()));
    wait_until_in_flight(&client).await;

    let report = client.shutdown().await;
    assert!(!report.forced);
    assert_eq!(report.abandoned, 0);
    assert_eq!(
        slow.await.unwrap().unwrap(),
        0,
        "the in-flight read finished"
    );
    assert_eq!(client.state(), ConnectionState::Closed);
    let refused = service.oneshot(ping()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ShuttingDown);
}

#[tokio::test]
async fn a_second_shutdown_forces_it() {
    let (server, client, service) = start().await;
    block_next_count(&server, Duration::from_secs(60));
    let _stuck = tokio::spawn(service.oneshot(count()));
    wait_until_in_flight(&client).await;
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.shutdown().await }
    });
    tokio::task::yield_now().await;
    let second = tokio::time::timeout(PATIENCE, client.shutdown())
        .await
        .unwrap();
    assert!(second.forced);
    let first = tokio::time::timeout(PATIENCE, first)
        .await
        .unwrap()
        .unwrap();
    assert!(first.forced);
    assert_eq!(first.abandoned, 1);
    assert_eq!(client.state(), ConnectionState::Closed);
}

#[tokio::test]
async fn reset_replaces_the_client_without_losing_in_flight_calls() {
    let (server, client, service) = start().await;
    service.clone().oneshot(insert(1)).await.unwrap();
    block_next_count(&server, Duration::from_millis(300));
    let slow = tokio::spawn(service.clone().oneshot(count()));
    wait_until_in_flight(&client).await;

    assert_eq!(client.generation(), 0);
    client.reset().unwrap();
    assert_eq!(client.generation(), 1, "a reset starts a new generation");
    assert_eq!(client.current_with_generation().1, 1);
    assert_eq!(
        slow.await.unwrap().unwrap(),
        1,
        "in-flight call finished on the old client"
    );
    assert_eq!(
        service.oneshot(count()).await.unwrap(),
        1,
        "new client serves"
    );
    match client.reset() {
        Err(ResetRefused::TooSoon { retry_after }) => {
            assert!(retry_after > Duration::from_secs(50))
        }
        other => panic!("a second reset must be refused, got {other:?}"),
    }
    assert_eq!(
        client.generation(),
        1,
        "a refused reset keeps the generation"
    );
}

/// A client that ran five inserts, once the driver has checked their connections back in.
async fn five_inserts_checked_in(server: &TestServer) -> ManagedClient {
    let client = connect(server).await;
    let service = MongoService::new(client.clone());
    for id in 0..5 {
        service.clone().oneshot(insert(id)).await.unwrap();
    }
    // The driver emits the check-in event just after the operation returns.
    tokio::time::timeout(PATIENCE, async {
        while client.pool_stats().in_use > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    client
}

#[tokio::test]
async fn pool_metrics_follow_cmap_events() {
    let server = TestServer::start().await.unwrap();
    let client = five_inserts_checked_in(&server).await;
    let stats = client.pool_stats();
    assert!(stats.open >= 1, "{stats:?}");
    assert!(stats.checkouts >= 5, "{stats:?}");
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(stats.idle, stats.open, "{stats:?}");
}

#[tokio::test]
async fn pool_metrics_reach_the_installed_recorder() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    // A current-thread runtime: the driver's events are handled on this thread, where the
    // local recorder is installed.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _installed = metrics::set_default_local_recorder(&recorder);
    let server = TestServer::start().await.unwrap();
    let client = five_inserts_checked_in(&server).await;
    let metrics = snapshotter.snapshot().into_hashmap();
    let value = |name: &str| {
        metrics
            .iter()
            .find(|(key, _)| key.key().name() == name)
            .map(|(_, (_, _, value))| value)
    };
    assert_eq!(
        value("keel_pool_connections_in_use"),
        Some(&DebugValue::Gauge(0.0.into()))
    );
    let open = client.pool_stats().open as f64;
    assert_eq!(
        value("keel_pool_connections_idle"),
        Some(&DebugValue::Gauge(open.into()))
    );
    let Some(DebugValue::Histogram(waits)) = value("keel_pool_checkout_wait_seconds") else {
        panic!("no checkout wait histogram: {metrics:?}");
    };
    // Validation at connect checks out too.
    assert!(waits.len() >= 5, "{} checkout waits", waits.len());
}

#[tokio::test]
async fn a_connection_reset_is_never_taken_for_an_outage() {
    let server = TestServer::start().await.unwrap();
    let proxy = keel_testkit::FaultProxy::start(server.addr())
        .await
        .unwrap();
    let mut settings = settings();
    // Fail at once once every member is judged down: any reset judged an outage fails a call.
    settings.outage_grace = Duration::ZERO;
    let client = ManagedClient::connect_with(options(&proxy.uri()).await, settings)
        .await
        .unwrap();
    let service = MongoService::new(client.clone());
    for round in 0..5 {
        // Every connection, the monitor's included, is reset; the server stays up. A count is
        // a retryable read: the driver retries it once the server is checked again.
        proxy.reset_all();
        service
            .clone()
            .oneshot(count())
            .await
            .unwrap_or_else(|e| panic!("count after reset {round}: {e}"));
        assert_ne!(
            client.state(),
            ConnectionState::Unreachable,
            "round {round}"
        );
    }
}

#[tokio::test]
async fn an_attempt_with_the_driver_when_the_server_stops_ends_at_the_grace() {
    let server = TestServer::start().await.unwrap();
    let mut options = options(&server.uri()).await;
    // Longer than PATIENCE: only the outage cut can end the attempt in time.
    options.server_selection_timeout = Some(Duration::from_secs(60));
    let mut settings = settings();
    settings.outage_grace = Duration::from_millis(300);
    let client = ManagedClient::connect_with(options, settings)
        .await
        .unwrap();
    block_next_count(&server, Duration::from_secs(5));
    let service = MongoService::new(client.clone());
    let in_flight = tokio::spawn(service.clone().oneshot(count()));
    wait_until_in_flight(&client).await;

    // The blocked read loses its connection; the driver retries it and waits in its server
    // selection for a server that does not come back.
    server.stop().await;
    let err = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .expect("the attempt must not wait out the driver's 60 s server selection")
        .unwrap()
        .unwrap_err();
    assert_eq!(client.state(), ConnectionState::Unreachable);
    assert_eq!(
        (err.kind(), err.class()),
        (ErrorKind::Unreachable, ErrorClass::Unavailable),
        "{err}"
    );
    assert!(!err.proves_not_applied(), "it was sent: {err}");
    assert!(err.retry_after().is_some(), "{err}");
}
