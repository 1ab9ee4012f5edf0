//! `Keel::run` works to one deadline: the operation's own or the configured one, whichever
//! comes first. Paused time, so the instants are exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_core::{ErrorKind, Operation};
use keel_testkit::TestServer;
use mongokeel::{Keel, KeelConfig};
use tokio::time::Instant;

/// An operation that never answers (it does not even reach the server).
fn hanging() -> Operation<u32> {
    Operation::read("test.items.hang", |_client: mongodb::Client| {
        std::future::pending()
    })
}

async fn keel(server: &TestServer, deadline: Duration) -> Keel {
    let mut config = KeelConfig::for_uri(server.uri()).unwrap();
    config.timeouts.attempt = deadline;
    config.timeouts.checkout_wait = Duration::from_secs(1);
    config.timeouts.deadline = deadline;
    Keel::builder(config).build().await.unwrap()
}

/// Runs the hanging operation with `timeout` on a stack configured with `deadline`, under
/// paused time: the error and how long the call took.
async fn cut(deadline: Duration, timeout: Duration) -> (keel_core::Error, Duration) {
    let server = TestServer::start().await.unwrap();
    let keel = keel(&server, deadline).await;
    tokio::time::pause();
    let start = Instant::now();
    let err = keel.run(hanging().with_timeout(timeout)).await.unwrap_err();
    (err, start.elapsed())
}

#[tokio::test]
async fn a_longer_operation_deadline_is_capped_by_the_configured_one() {
    let (err, waited) = cut(Duration::from_secs(2), Duration::from_secs(60)).await;
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert!(err.to_string().contains("test.items.hang"), "{err}");
    // The timer wheel counts whole milliseconds.
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_millis(2_001),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_shorter_operation_deadline_is_kept() {
    let (err, waited) = cut(Duration::from_secs(20), Duration::from_secs(3)).await;
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert!(
        waited >= Duration::from_secs(3) && waited <= Duration::from_millis(3_001),
        "{waited:?}"
    );
}
