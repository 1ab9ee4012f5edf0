//! Every retry counts in `keel_retry_attempts_total{op,class}`; every error handed back counts
//! in `keel_retry_give_ups_total{op,reason}`, for each reason. (The `tracing` events are checked
//! in `tests/events.rs`, a binary of their own.)

use std::{collections::BTreeMap, time::Duration};

use keel_retry::{ATTEMPTS_TOTAL, BudgetConfig, GIVE_UPS_TOTAL, Jitter, RetryConfig, StopReason};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::Layer;

use crate::common::run_paused;
use crate::support::{Kind, Req, Script, TestError, config, layer, ms, send};

/// Sends one request through a fresh layer over `script`, returning the error.
async fn fail(config: RetryConfig, script: Script) -> TestError {
    let mut service = layer(config).layer(script.service());
    send(&mut service, Req::plain()).await.unwrap_err()
}

/// (metric name, sorted `k=v` labels) → counter value.
fn counters(body: impl FnOnce()) -> BTreeMap<(String, String), u64> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, body);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let mut labels: Vec<_> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let DebugValue::Counter(count) = value else {
                panic!("{} is not a counter", key.key().name());
            };
            ((key.key().name().to_owned(), labels.join(",")), count)
        })
        .collect()
}

fn key(name: &str, labels: &str) -> (String, String) {
    (name.to_owned(), labels.to_owned())
}

#[test]
fn each_retry_is_counted_with_the_class_of_the_error_that_caused_it() {
    let counted = counters(|| {
        let script = Script::new([
            Err(Kind::Transient),
            Err(Kind::Hinted(ms(300))),
            Err(Kind::Fatal),
        ]);
        let err = run_paused(fail(config(Jitter::None), script));
        assert_eq!(err.reason, Some(StopReason::NotRetryable));
    });
    assert_eq!(
        counted,
        BTreeMap::from([
            (key(ATTEMPTS_TOTAL, "class=hinted,op=request"), 1),
            (key(ATTEMPTS_TOTAL, "class=transient,op=request"), 1),
            (key(GIVE_UPS_TOTAL, "op=request,reason=not_retryable"), 1),
        ])
    );
}

#[test]
fn every_stop_reason_is_counted_under_its_label() {
    let budgetless = RetryConfig {
        budget: Some(BudgetConfig {
            ratio: 0.0,
            min_per_sec: 0,
            window: Duration::from_secs(10),
        }),
        ..config(Jitter::None)
    };
    let short = RetryConfig {
        total_timeout: Some(ms(150)),
        ..config(Jitter::None)
    };
    for reason in StopReason::ALL {
        let counted = counters(|| {
            let (config, script) = match reason {
                StopReason::NotRetryable => (config(Jitter::None), Script::new([Err(Kind::Fatal)])),
                StopReason::MaxAttempts => (config(Jitter::None), Script::always_failing()),
                StopReason::BudgetExhausted => (budgetless, Script::always_failing()),
                StopReason::DeadlineExceeded => (short, Script::always_failing()),
                other => panic!("{other:?} is new: add a scenario"),
            };
            let err = run_paused(fail(config, script));
            assert_eq!(err.reason, Some(reason));
        });
        let label = format!("op=request,reason={}", reason.label());
        assert_eq!(
            counted.get(&key(GIVE_UPS_TOTAL, &label)),
            Some(&1),
            "{reason:?}: {counted:?}"
        );
        let give_ups: u64 = counted
            .iter()
            .filter(|((name, _), _)| name == GIVE_UPS_TOTAL)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(give_ups, 1, "exactly one give-up for {reason:?}");
    }
}
