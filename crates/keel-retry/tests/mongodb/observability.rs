//! Every retry counts in `keel_retry_attempts_total{op,class}`; every error handed back counts in
//! `keel_retry_give_ups_total{op,reason}`. (The `tracing` events are checked in
//! `tests/events.rs`, a binary of their own.)

use keel_core::OperationKind;
use keel_retry::{ATTEMPTS_TOTAL, GIVE_UPS_TOTAL};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

use crate::common::run_paused;
use crate::support::{Script, config, op, retrying, send};

async fn fail_three_times() {
    let script = Script::new([]);
    let mut service = retrying(config(3), &script);
    send(&mut service, op("users.find", OperationKind::Read))
        .await
        .unwrap_err();
}

#[test]
fn retries_and_give_ups_are_counted_with_their_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || run_paused(fail_three_times()));

    let mut counters = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<_> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let DebugValue::Counter(count) = value else {
            panic!("{} is not a counter", key.name());
        };
        counters.push((key.name().to_owned(), labels.join(","), count));
    }
    counters.sort();
    assert_eq!(
        counters,
        [
            (
                ATTEMPTS_TOTAL.to_owned(),
                "class=network,op=users.find".to_owned(),
                2
            ),
            (
                GIVE_UPS_TOTAL.to_owned(),
                "op=users.find,reason=max_attempts".to_owned(),
                1
            ),
        ]
    );
    assert_eq!(ATTEMPTS_TOTAL, "keel_retry_attempts_total");
    assert_eq!(GIVE_UPS_TOTAL, "keel_retry_give_ups_total");
}
