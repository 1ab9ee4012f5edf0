//! How a consumer stops, as a caller sees it: the typed stop error without consuming the
//! consumer, handler retries "forever" cut short by a shutdown, and a checkpoint store that is
//! gone for good.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use futures_util::future::{BoxFuture, FutureExt};
use keel_change_streams::{
    ChangeConsumer, Checkpoint, CheckpointStore, CommitError, ConsumerStatus, HandlerRetry,
};
use mongodb::bson::{Document, Timestamp};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_error_is_readable_while_the_consumer_is_kept() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let consumer = always_failing(keel.clone(), "read-stop").spawn().unwrap();
    running(&consumer).await;
    assert!(consumer.stop_error().is_none(), "running: no stop error");
    insert(&keel, 0..1).await;
    let mut status = consumer.status();
    tokio::time::timeout(
        WAIT,
        status.wait_for(|s| matches!(s, ConsumerStatus::Stopped { .. })),
    )
    .await
    .unwrap()
    .unwrap();
    // Set before `Stopped` was published, and the same error `wait` returns.
    let error = consumer.stop_error().expect("a stop error");
    assert!(error.to_string().contains("downstream is down"), "{error}");
    assert_eq!(error.kind(), keel_core::ErrorKind::Config);
    let waited = consumer.wait().await.unwrap_err();
    assert_eq!(waited.to_string(), error.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_forever_never_gives_up_and_a_shutdown_interrupts_it() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&attempts);
    let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "forever")
        .collection(&db(), "orders")
        .handler_retry(HandlerRetry::forever(fast_backoff()))
        .handler(move |_e| {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Err("still down")
            }
        })
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..1).await;
    // Far past any default attempt count, and still running.
    let many = tokio::time::timeout(WAIT, async {
        while attempts.load(Ordering::SeqCst) < 50 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(many.is_ok(), "{} attempts", attempts.load(Ordering::SeqCst));
    assert_eq!(*consumer.status().borrow(), ConsumerStatus::Running);
    assert_eq!(consumer.stats().handled(), 0);
    // A shutdown ends the retries: a clean stop, the event not committed.
    let stopped = tokio::time::timeout(WAIT, consumer.shutdown()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
}

/// A store whose owner is gone: every commit is `Unavailable` (clones share the count).
#[derive(Clone, Default)]
struct GoneStore {
    commits: Arc<AtomicU32>,
}

impl CheckpointStore for GoneStore {
    fn load<'a>(
        &'a self,
        _consumer: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, keel_core::Error>> {
        async { Ok(None) }.boxed()
    }
    fn commit<'a>(
        &'a self,
        consumer: &'a str,
        _expected: u64,
        _token: &'a Document,
        _cluster_time: Option<Timestamp>,
        _fence: Option<u64>,
    ) -> BoxFuture<'a, Result<Checkpoint, CommitError>> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        async move {
            Err(CommitError::Unavailable {
                consumer: consumer.to_owned(),
                reason: "the sync client that owned it shut down".to_owned(),
            })
        }
        .boxed()
    }
    fn clear<'a>(&'a self, _consumer: &'a str) -> BoxFuture<'a, Result<(), keel_core::Error>> {
        async { Ok(()) }.boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_store_stops_the_consumer_without_retrying() {
    let rs = replica_set(10_000).await;
    let keel = keel(&rs.uri()).await;
    let store = GoneStore::default();
    let seen = Seen::default();
    let consumer = recording(keel.clone(), "orphan", &seen)
        .store(store.clone())
        .spawn()
        .unwrap();
    running(&consumer).await;
    insert(&keel, 0..1).await;
    let err = stop_error(consumer).await;
    assert!(
        err.to_string().contains("is unavailable")
            && err.to_string().contains("owned it shut down"),
        "{err}"
    );
    assert_eq!(seen.ids(), [0]);
    // The batch's commit, and the last one the stop attempts: no retry loop.
    let commits = store.commits.load(Ordering::SeqCst);
    assert!((1..=2).contains(&commits), "{commits} commits");
    assert!(
        !CommitError::Unavailable {
            consumer: "c".into(),
            reason: "r".into()
        }
        .is_retryable()
    );
}
