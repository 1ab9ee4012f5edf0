//! Deadlines, hints and the annotated final error of the MongoDB policy.

use std::time::Duration;

use keel_core::{Error, ErrorClass, ErrorKind, Operation, OperationKind};
use keel_retry::{BudgetConfig, RetryConfig, RetryLayer};
use tokio::time::Instant;
use tower::{Layer, service_fn, util::BoxCloneService};

use crate::support::{Mock, Script, config, io_error, op, retrying, send};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn the_operation_deadline_bounds_the_retries_and_keeps_the_class() {
    let script = Script::new([]);
    let mut service = retrying(config(10), &script);
    let start = Instant::now();
    let find = op("users.find", OperationKind::Read).with_timeout(ms(250));
    let err = send(&mut service, find).await.unwrap_err();
    // Attempts at 0 and 100 ms; the next would start at 300 ms, past the 250 ms deadline.
    assert_eq!(script.offsets(start), [ms(0), ms(100)]);
    assert_eq!(
        err.class(),
        ErrorClass::Network,
        "the last failure's class is kept"
    );
    assert_eq!(err.attempts(), Some(2));
    assert_eq!(err.stopped_because(), Some("deadline exceeded"));
    assert!(
        err.to_string()
            .contains("after 2 attempts; stopped: deadline exceeded")
    );
}

#[tokio::test(start_paused = true)]
async fn an_operation_past_its_deadline_is_not_sent() {
    let script = Script::new([Ok(1)]);
    let mut service = retrying(config(3), &script);
    let late = op("users.find", OperationKind::Read).with_deadline(Instant::now());
    let err = send(&mut service, late).await.unwrap_err();
    assert_eq!(script.calls(), 0);
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(err.class(), ErrorClass::Timeout);
    assert_eq!(
        (err.attempts(), err.stopped_because()),
        (Some(0), Some("deadline exceeded"))
    );
    assert!(err.detail().contains("users.find"));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_error_from_below_is_never_retried() {
    let script = Script::new([Err(Error::deadline_exceeded("caller gave up")), Ok(1)]);
    let mut service = retrying(config(3), &script);
    let err = send(&mut service, op("users.find", OperationKind::Read))
        .await
        .unwrap_err();
    assert_eq!(script.calls(), 1);
    assert_eq!(err.stopped_because(), Some("not retryable"));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_hint_is_honoured() {
    let shed = Error::overloaded("server shed the request", Some(Duration::from_secs(3)));
    let script = Script::new([Err(shed), Ok(5)]);
    let mut service = retrying(config(3), &script);
    let start = Instant::now();
    let update = op("users.update", OperationKind::Write { idempotent: false });
    assert_eq!(send(&mut service, update).await.unwrap(), 5);
    assert_eq!(
        script.offsets(start),
        [ms(0), ms(3000)],
        "not the 100 ms backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn running_out_of_attempts_says_so() {
    let script = Script::new([]);
    let mut service = retrying(config(3), &script);
    let err = send(&mut service, op("users.find", OperationKind::Read))
        .await
        .unwrap_err();
    assert_eq!(script.calls(), 3);
    assert_eq!(
        (err.attempts(), err.stopped_because()),
        (Some(3), Some("max attempts reached"))
    );
    assert!(
        err.to_string()
            .ends_with("after 3 attempts; stopped: max attempts reached")
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_says_so() {
    let script = Script::new([]);
    let config = RetryConfig {
        budget: Some(BudgetConfig {
            ratio: 0.0,
            min_per_sec: 0,
            window: Duration::from_secs(10),
        }),
        ..config(3)
    };
    let mut service = retrying(config, &script);
    let err = send(&mut service, op("users.find", OperationKind::Read))
        .await
        .unwrap_err();
    assert_eq!(script.calls(), 1);
    assert_eq!(err.stopped_because(), Some("retry budget exhausted"));
    assert_eq!(err.class(), ErrorClass::Network);
}

#[tokio::test(start_paused = true)]
async fn success_after_a_network_blip() {
    let script = Script::new([Err(io_error()), Ok(9)]);
    let mut service = retrying(config(3), &script);
    let insert = op("users.upsert", OperationKind::Write { idempotent: true });
    assert_eq!(send(&mut service, insert).await.unwrap(), 9);
    assert_eq!(script.calls(), 2);
}

/// A driver that never answers (a blackholed connection).
fn blackhole() -> Mock {
    BoxCloneService::new(service_fn(|_op: Operation<u32>| {
        std::future::pending::<Result<u32, Error>>()
    }))
}

#[tokio::test(start_paused = true)]
async fn an_attempt_still_running_at_the_operation_deadline_is_cut() {
    let mut service = RetryLayer::mongodb(config(3)).unwrap().layer(blackhole());
    let start = Instant::now();
    let find = op("users.find", OperationKind::Read).with_timeout(ms(250));
    let err = tokio::time::timeout(Duration::from_secs(3_600), send(&mut service, find))
        .await
        .expect("the layer must answer at the deadline")
        .unwrap_err();
    assert_eq!(start.elapsed(), ms(250));
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(err.class(), ErrorClass::Timeout);
    assert!(!err.is_retryable(OperationKind::Read));
    assert_eq!(
        (err.attempts(), err.stopped_because()),
        (Some(1), Some("deadline exceeded"))
    );
    assert!(err.detail().contains("users.find"), "{}", err.detail());
}

#[tokio::test(start_paused = true)]
async fn the_total_timeout_cuts_an_operation_without_its_own_deadline() {
    let mut service = RetryLayer::mongodb(config(3)).unwrap().layer(blackhole());
    let start = Instant::now();
    let update = op("users.update", OperationKind::Write { idempotent: false });
    let err = tokio::time::timeout(Duration::from_secs(3_600), send(&mut service, update))
        .await
        .expect("the layer must answer at the deadline")
        .unwrap_err();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "config(3) has a 10 s total"
    );
    assert_eq!(err.stopped_because(), Some("deadline exceeded"));
}
