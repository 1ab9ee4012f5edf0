//! Keel's in-process stats (retries, breaker calls) need no metrics recorder, so an
//! application's own recorder (Prometheus, say) installs beside them and still gets Keel's
//! metrics. Its own test binary: it installs the process-global recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use mongokeel::{Keel, KeelConfig};
use support::answers_after_one_failure;

#[tokio::test]
async fn stats_count_while_the_applications_own_recorder_is_installed() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no recorder was installed before");

    let server = keel_testkit::TestServer::start().await.unwrap();
    let keel = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
        .build()
        .await
        .unwrap();
    answers_after_one_failure(&keel, "test.items.find_one").await;

    let retries = keel.retry_stats().unwrap().snapshot();
    assert_eq!(
        (retries.attempts, retries.retries, retries.gave_up()),
        (2, 1, 0)
    );
    let breaker = keel.breaker().unwrap().stats();
    assert_eq!(
        breaker.calls(),
        1,
        "the breaker sees the call once, above the retries"
    );
    assert_eq!((breaker.successes, breaker.rejected), (1, 0));

    let retried = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(key, ..)| key.key().name() == keel_retry::ATTEMPTS_TOTAL)
        .map(|(.., value)| value);
    assert_eq!(
        retried,
        Some(DebugValue::Counter(1)),
        "the recorder got the metric too"
    );
    keel.shutdown().await;
}
