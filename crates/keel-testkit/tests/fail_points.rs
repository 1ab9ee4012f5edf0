//! `configureFailPoint failCommand` in every mode and with every data field, driven through the
//! official driver exactly as a test against a real mongod (with test commands enabled) would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_testkit::{FailCommand, TestServer};
use mongodb::Client;
use mongodb::bson::{Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use support::{Fixture, code, fast_options};

async fn configure(client: &Client, cmd: Document) -> Document {
    client.database("admin").run_command(cmd).await.unwrap()
}

async fn ping_like(client: &Client) -> mongodb::error::Result<Document> {
    client
        .database("testkit")
        .run_command(doc! {"find": "fp", "filter": {}})
        .await
}

#[tokio::test]
async fn always_on_then_off() {
    let f = Fixture::new().await;
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {"failCommands": ["find"], "errorCode": 8, "errmsg": "injected"}}).await;
    for _ in 0..3 {
        let err = ping_like(&f.client).await.unwrap_err();
        assert_eq!(code(&err), Some(8));
        let ErrorKind::Command(c) = &*err.kind else {
            panic!()
        };
        assert_eq!(c.message, "injected");
        assert_eq!(c.code_name, "UnknownError");
    }
    // Other commands are untouched.
    f.client
        .database("admin")
        .run_command(doc! {"ping": 1})
        .await
        .unwrap();
    let off = configure(
        &f.client,
        doc! {"configureFailPoint": "failCommand", "mode": "off"},
    )
    .await;
    assert_eq!(
        off.get_i64("count").unwrap(),
        3,
        "count = times the fail point fired"
    );
    ping_like(&f.client).await.unwrap();
}

#[tokio::test]
async fn times_then_off_automatically() {
    let f = Fixture::new().await;
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"times": 2}, "data": {"failCommands": ["find"], "errorCode": 2}}).await;
    assert_eq!(code(&ping_like(&f.client).await.unwrap_err()), Some(2));
    let err = ping_like(&f.client).await.unwrap_err();
    let ErrorKind::Command(c) = &*err.kind else {
        panic!()
    };
    assert_eq!(c.message, "Failing command via 'failCommand' failpoint");
    ping_like(&f.client).await.unwrap();
}

#[tokio::test]
async fn skip_then_always() {
    let f = Fixture::new().await;
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"skip": 2}, "data": {"failCommands": ["find"], "errorCode": 2}}).await;
    ping_like(&f.client).await.unwrap();
    ping_like(&f.client).await.unwrap();
    assert!(ping_like(&f.client).await.is_err());
    assert!(ping_like(&f.client).await.is_err());
}

#[tokio::test]
async fn activation_probability_bounds() {
    let f = Fixture::new().await;
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"activationProbability": 0.0}, "data": {"failCommands": ["find"], "errorCode": 2}}).await;
    for _ in 0..20 {
        ping_like(&f.client).await.unwrap();
    }
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"activationProbability": 1.0}, "data": {"failCommands": ["find"], "errorCode": 2}}).await;
    for _ in 0..5 {
        assert!(ping_like(&f.client).await.is_err());
    }
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"activationProbability": 0.5}, "data": {"failCommands": ["find"], "errorCode": 2}}).await;
    let mut failures = 0;
    for _ in 0..200 {
        failures += usize::from(ping_like(&f.client).await.is_err());
    }
    // Bounds five standard deviations wide: a real distribution, not a fixed pattern.
    assert!((65..=135).contains(&failures), "{failures} of 200 failed");
}

#[tokio::test]
async fn error_labels_are_reported() {
    let f = Fixture::new().await;
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["find"], "errorCode": 2, "errorLabels": ["TransientTransactionError", "Custom"]}}).await;
    let err = ping_like(&f.client).await.unwrap_err();
    assert!(err.contains_label("TransientTransactionError"));
    assert!(err.contains_label("Custom"));
}

#[tokio::test]
async fn close_connection_drops_without_reply() {
    let f = Fixture::new().await;
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["find"], "closeConnection": true}}).await;
    let err = ping_like(&f.client).await.unwrap_err();
    assert!(
        matches!(*err.kind, ErrorKind::Io(_)),
        "network error, not a server reply: {err:?}"
    );
    ping_like(&f.client).await.unwrap();
}

#[tokio::test]
async fn block_connection_delays_the_reply() {
    let f = Fixture::new().await;
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["find"], "blockConnection": true, "blockTimeMS": 5_000}}).await;
    let blocked = tokio::time::timeout(Duration::from_millis(300), ping_like(&f.client)).await;
    assert!(blocked.is_err(), "the reply must be held");
    // A short block still succeeds: blocking delays, it does not fail.
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["find"], "blockConnection": true, "blockTimeMS": 50}}).await;
    support::within(ping_like(&f.client)).await.unwrap();
    // Combined with an error code, the error comes after the block.
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["find"], "blockConnection": true, "blockTimeMS": 50, "errorCode": 2}}).await;
    assert_eq!(
        code(&support::within(ping_like(&f.client)).await.unwrap_err()),
        Some(2)
    );
}

#[tokio::test]
async fn write_concern_error_runs_the_write_and_reports() {
    let f = Fixture::new().await;
    configure(&f.client, doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["insert"], "writeConcernError": {"code": 91, "errmsg": "Replication is being shut down"}}}).await;
    let c = f.coll("wce");
    let err = c.insert_one(doc! {"_id": 1}).await.unwrap_err();
    let ErrorKind::Write(WriteFailure::WriteConcernError(wce)) = &*err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(wce.code, 91);
    assert_eq!(wce.code_name, "ShutdownInProgress");
    assert_eq!(wce.message, "Replication is being shut down");
    assert_eq!(
        c.count_documents(doc! {}).await.unwrap(),
        1,
        "the write itself applied"
    );
}

#[tokio::test]
async fn app_name_filters_connections() {
    let server = TestServer::start().await.unwrap();
    let mut victim_opts = fast_options(&server.uri()).await;
    victim_opts.app_name = Some("victim".into());
    let victim = Client::with_options(victim_opts).unwrap();
    let bystander = Client::with_options(fast_options(&server.uri()).await).unwrap();
    configure(&bystander, doc! {"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {"failCommands": ["find"], "errorCode": 2, "appName": "victim"}}).await;
    assert!(ping_like(&victim).await.is_err());
    ping_like(&bystander).await.unwrap();
}

#[tokio::test]
async fn rust_api_is_equivalent_to_the_command() {
    let f = Fixture::new().await;
    f.server
        .fail_command(FailCommand::new(["find"]).error_code(2).times(1))
        .unwrap();
    assert!(ping_like(&f.client).await.is_err());
    ping_like(&f.client).await.unwrap();
    f.server
        .fail_command(FailCommand::new(["find"]).error_code(2))
        .unwrap();
    f.server.clear_fail_points();
    ping_like(&f.client).await.unwrap();
    // The generated command is accepted by the server (and by mongod).
    let cmd = FailCommand::new(["find"])
        .error_code(2)
        .times(1)
        .to_command();
    configure(&f.client, cmd).await;
    assert!(ping_like(&f.client).await.is_err());
}

#[tokio::test]
async fn invalid_fail_points_are_bad_value() {
    let f = Fixture::new().await;
    for cmd in [
        doc! {"configureFailPoint": "failCommand", "mode": "sometimes"},
        doc! {"configureFailPoint": "noSuchFailPoint", "mode": "alwaysOn"},
        doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": "find"}},
        doc! {"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {"failCommands": ["find"], "blockConnection": true}},
    ] {
        let err = f
            .client
            .database("admin")
            .run_command(cmd.clone())
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(2), "{cmd}");
    }
}
