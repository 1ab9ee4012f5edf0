//! Keel's in-process stats (retries, breaker calls) need no metrics recorder, so an
//! application's own recorder (Prometheus, say) installs beside them and still gets Keel's
//! metrics. Its own test binary: it installs the process-global recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use keel_core::Operation;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use mongokeel::{Keel, KeelConfig};

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
    // Fails its first attempt with a network error (retryable), then answers.
    let attempts = Arc::new(AtomicU32::new(0));
    let flaky = Operation::read("test.items.find_one", move |_client| {
        let n = attempts.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into())
            } else {
                Ok(n)
            }
        }
    });
    assert_eq!(keel.run(flaky).await.unwrap(), 1);

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
