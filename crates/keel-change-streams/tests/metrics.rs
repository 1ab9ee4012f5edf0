//! The `keel_change_stream_*` metrics, read with a local recorder (`metrics::with_local_recorder`
//! around a current-thread runtime, so every task of the consumer records into it; never a
//! global recorder).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{collections::HashMap, time::Duration};

use keel_change_streams::{ChangeConsumer, FailurePolicy, HandlerRetry, metrics as names};
use keel_testkit::FailCommand;
use metrics_util::{
    CompositeKey,
    debugging::{DebugValue, DebuggingRecorder},
};
use mongodb::bson::Document;
use support::*;

/// Every series of consumer `m`, keyed by (name, class label).
fn series(recorder: &DebuggingRecorder) -> HashMap<(String, Option<String>), DebugValue> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value): (CompositeKey, _, _, _)| {
            let labels: HashMap<_, _> = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (labels.get("consumer").map(String::as_str) == Some("m")).then(|| {
                (
                    (key.key().name().to_owned(), labels.get("class").cloned()),
                    value,
                )
            })
        })
        .collect()
}

#[test]
fn a_consumer_publishes_its_metrics() {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let rs = replica_set(10_000).await;
                let keel = keel(&rs.uri()).await;
                let consumer = ChangeConsumer::<Document>::builder(keel.clone(), "m")
                    .collection(&db(), "orders")
                    .max_await_time(Duration::from_millis(100))
                    .handler_retry(HandlerRetry {
                        max_attempts: 2,
                        backoff: keel_retry::BackoffConfig {
                            base: Duration::from_millis(1),
                            cap: Duration::from_millis(2),
                            ..keel_retry::BackoffConfig::default()
                        },
                    })
                    .on_handler_failure(FailurePolicy::DeadLetter {
                        database: db(),
                        collection: "dlq".into(),
                    })
                    .handler(|event| async move {
                        // Document 3 always fails: two errors, then a dead letter.
                        match event.document_key.and_then(|k| k.get_i32("_id").ok()) {
                            Some(3) => Err("document 3 is refused".to_owned()),
                            _ => Ok(()),
                        }
                    })
                    .spawn()
                    .unwrap();
                running(&consumer).await;
                insert(&keel, 0..5).await;
                // Labelled getMore failures past the driver's own resume: the consumer resumes.
                rs.fail_command(
                    FailCommand::new(["getMore", "aggregate"])
                        .error_code(10107)
                        .error_labels(["ResumableChangeStreamError"])
                        .times(3),
                )
                .unwrap();
                insert(&keel, 5..10).await;
                let done = tokio::time::timeout(WAIT, async {
                    while consumer.stats().handled() < 10 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
                .await;
                assert!(done.is_ok(), "handled {}", consumer.stats().handled());
                assert!(consumer.stats().resumes() >= 1);
                consumer.shutdown().await.unwrap();
            });
    });
    let values = series(&recorder);
    let counter = |name: &str, class: Option<&str>| match values
        .get(&(name.to_owned(), class.map(str::to_owned)))
    {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}: {other:?} in {values:?}"),
    };
    assert_eq!(counter(names::EVENTS_HANDLED, None), 10);
    assert_eq!(counter(names::HANDLER_ERRORS, None), 2);
    assert_eq!(counter(names::DEAD_LETTERED, None), 1);
    let resumes: u64 = values
        .iter()
        .filter(|((name, _), _)| name == names::RESUMES)
        .map(|((_, class), v)| {
            assert!(class.is_some(), "resumes carry their class");
            match v {
                DebugValue::Counter(n) => *n,
                _ => 0,
            }
        })
        .sum();
    assert!(resumes >= 1, "{values:?}");
    for gauge in [
        names::LAG_SECONDS,
        names::CHECKPOINT_AGE_SECONDS,
        names::LEASE_HELD,
    ] {
        assert!(
            matches!(
                values.get(&(gauge.to_owned(), None)),
                Some(DebugValue::Gauge(_))
            ),
            "{gauge} missing: {values:?}"
        );
    }
    // Stopped: it no longer consumes, so it no longer counts as holding.
    assert!(matches!(
        values.get(&(names::LEASE_HELD.to_owned(), None)),
        Some(DebugValue::Gauge(v)) if v.into_inner() == 0.0
    ));
}
