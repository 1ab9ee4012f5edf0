//! Metrics published through the `metrics` facade: the state gauge and the per-outcome counter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Duration};

use keel_breaker::{Breaker, BreakerConfig, CallOutcome};
use metrics_util::{
    CompositeKey,
    debugging::{DebugValue, DebuggingRecorder, Snapshotter},
};

/// Every series of breaker `cluster0` in one snapshot, keyed by (name, outcome label).
///
/// A debugging snapshot drains the values it reads, so each check takes exactly one.
fn read(snapshotter: &Snapshotter) -> HashMap<(String, Option<String>), DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value): (CompositeKey, _, _, _)| {
            let labels: HashMap<_, _> = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (labels.get("name").map(String::as_str) == Some("cluster0")).then(|| {
                let outcome = labels.get("outcome").cloned();
                ((key.key().name().to_owned(), outcome), value)
            })
        })
        .collect()
}

fn counter(values: &HashMap<(String, Option<String>), DebugValue>, outcome: &str) -> u64 {
    let key = (
        "keel_breaker_calls_total".to_owned(),
        Some(outcome.to_owned()),
    );
    match values.get(&key) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("counter {outcome}: {other:?}"),
    }
}

fn state(snapshotter: &Snapshotter) -> f64 {
    match read(snapshotter).get(&("keel_breaker_state".to_owned(), None)) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("state gauge: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn outcomes_and_states_are_published() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let config = BreakerConfig {
        consecutive_failures: Some(2),
        half_open_probes: 1,
        ..BreakerConfig::default()
    };
    let breaker =
        metrics::with_local_recorder(&recorder, || Breaker::new("cluster0", config)).unwrap();
    assert_eq!(state(&snapshotter), 0.0);

    breaker.try_acquire().unwrap().record(CallOutcome::Success);
    let slow = breaker.try_acquire().unwrap();
    tokio::time::advance(Duration::from_secs(3)).await;
    slow.record(CallOutcome::Success);
    breaker.try_acquire().unwrap().record(CallOutcome::Ignored);
    breaker.try_acquire().unwrap().record(CallOutcome::Failure);
    breaker.try_acquire().unwrap().record(CallOutcome::Failure);
    assert!(breaker.try_acquire().is_err());

    let values = read(&snapshotter);
    assert_eq!(counter(&values, "success"), 1);
    assert_eq!(counter(&values, "slow"), 1);
    assert_eq!(counter(&values, "ignored"), 1);
    assert_eq!(counter(&values, "failure"), 2);
    assert_eq!(counter(&values, "rejected"), 1);
    assert_eq!(
        values[&("keel_breaker_state".to_owned(), None)],
        DebugValue::Gauge(1.0.into())
    );

    tokio::time::advance(Duration::from_secs(5)).await;
    let _ = breaker.state();
    assert_eq!(state(&snapshotter), 2.0);
    breaker.force_open();
    assert_eq!(state(&snapshotter), 3.0);
    breaker.disable();
    assert_eq!(state(&snapshotter), 4.0);
    breaker.reset();
    assert_eq!(state(&snapshotter), 0.0);
}
