//! Counting the retry layer's retries for the status line, through the `metrics` facade Keel
//! already reports to: a tiny recorder that keeps one counter and ignores everything else.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// The retry layer's counter of retries started (`keel_retry::ATTEMPTS_TOTAL`; the name is part
/// of keel-retry's documented metrics, so it is stable).
const RETRIES_METRIC: &str = "keel_retry_attempts_total";

/// Retries counted since [`install`].
static RETRIES: AtomicU64 = AtomicU64::new(0);

struct Retries;

impl CounterFn for Retries {
    fn increment(&self, value: u64) {
        RETRIES.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        RETRIES.fetch_max(value, Ordering::Relaxed);
    }
}

struct RetryRecorder {
    retries: Arc<Retries>,
}

impl Recorder for RetryRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() == RETRIES_METRIC {
            Counter::from_arc(Arc::clone(&self.retries))
        } else {
            Counter::noop()
        }
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// Installs the counting recorder as the process's metrics recorder. Returns false when another
/// recorder was installed first (the count then stays at zero).
pub(crate) fn install() -> bool {
    metrics::set_global_recorder(RetryRecorder {
        retries: Arc::new(Retries),
    })
    .is_ok()
}

/// Retries counted so far.
pub(crate) fn count() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}
