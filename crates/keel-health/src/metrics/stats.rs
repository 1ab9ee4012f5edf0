//! In-process operation statistics (totals, errors by class, recent latencies), shared by the
//! operation metrics layer, the health monitor (error rate) and the dashboard.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use keel_core::ErrorClass;
use tokio::time::Instant;

use crate::monitor::percentile;

/// Recent latencies kept for percentiles: enough for a stable p99, small enough to sort each
/// second.
const RECENT: usize = 2048;

/// Counters and recent latencies of operations, cheap to clone and to record into.
///
/// ```
/// use std::time::Duration;
/// use keel_core::ErrorClass;
/// use keel_health::OperationStats;
/// let stats = OperationStats::default();
/// stats.record(Duration::from_millis(3), None);
/// stats.record(Duration::from_millis(9), Some(ErrorClass::Network));
/// let snapshot = stats.snapshot();
/// assert_eq!((snapshot.total, snapshot.errors, snapshot.infrastructure_errors), (2, 1, 1));
/// assert_eq!(snapshot.errors_of(ErrorClass::Network), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct OperationStats {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    total: AtomicU64,
    errors: AtomicU64,
    infrastructure_errors: AtomicU64,
    by_class: [AtomicU64; ErrorClass::ALL.len()],
    recent: Mutex<VecDeque<(Instant, Duration)>>,
}

/// Totals since start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationSnapshot {
    /// Operations finished.
    pub total: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Failures whose class says something about the database (not the caller's request).
    pub infrastructure_errors: u64,
    /// Failures per class, every class listed, in `ErrorClass::ALL` order.
    pub errors_by_class: Vec<(ErrorClass, u64)>,
}

impl OperationSnapshot {
    /// Failures of one class.
    pub fn errors_of(&self, class: ErrorClass) -> u64 {
        self.errors_by_class
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(0, |(_, n)| *n)
    }
}

/// Latency percentiles of recent operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencySummary {
    /// Operations counted.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

fn class_index(class: ErrorClass) -> usize {
    // A class added to keel-core later counts as Unknown until listed here.
    ErrorClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or(ErrorClass::ALL.len() - 1)
}

impl OperationStats {
    /// Records one finished operation.
    pub fn record(&self, duration: Duration, error: Option<ErrorClass>) {
        let inner = &self.inner;
        inner.total.fetch_add(1, Ordering::Relaxed);
        if let Some(class) = error {
            inner.errors.fetch_add(1, Ordering::Relaxed);
            if class.is_infrastructure() {
                inner.infrastructure_errors.fetch_add(1, Ordering::Relaxed);
            }
            inner.by_class[class_index(class)].fetch_add(1, Ordering::Relaxed);
        }
        let mut recent = inner.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back((Instant::now(), duration));
    }

    /// Totals now.
    pub fn snapshot(&self) -> OperationSnapshot {
        let inner = &self.inner;
        OperationSnapshot {
            total: inner.total.load(Ordering::Relaxed),
            errors: inner.errors.load(Ordering::Relaxed),
            infrastructure_errors: inner.infrastructure_errors.load(Ordering::Relaxed),
            errors_by_class: ErrorClass::ALL
                .iter()
                .zip(&inner.by_class)
                .map(|(class, n)| (*class, n.load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// Percentiles of the operations that finished within the last `within`
    /// (`None` if there were none).
    pub fn latency(&self, within: Duration) -> Option<LatencySummary> {
        let now = Instant::now();
        let mut latencies: Vec<Duration> = {
            let recent = self
                .inner
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            recent
                .iter()
                .filter(|(at, _)| now.saturating_duration_since(*at) <= within)
                .map(|(_, d)| *d)
                .collect()
        };
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        Some(LatencySummary {
            count: latencies.len(),
            p50: percentile(&latencies, 0.5),
            p90: percentile(&latencies, 0.9),
            p99: percentile(&latencies, 0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn latency_covers_only_the_recent_past() {
        let stats = OperationStats::default();
        stats.record(Duration::from_millis(100), None);
        tokio::time::advance(Duration::from_secs(61)).await;
        for ms in 1..=10 {
            stats.record(Duration::from_millis(ms), None);
        }
        let summary = stats.latency(Duration::from_secs(60)).unwrap();
        assert_eq!(summary.count, 10);
        assert_eq!(summary.p50, Duration::from_millis(5));
        assert_eq!(summary.p99, Duration::from_millis(10));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(stats.latency(Duration::from_secs(60)), None);
    }

    #[test]
    fn caller_errors_are_not_infrastructure_errors() {
        let stats = OperationStats::default();
        stats.record(Duration::ZERO, Some(ErrorClass::InvalidInput));
        let snapshot = stats.snapshot();
        assert_eq!((snapshot.errors, snapshot.infrastructure_errors), (1, 0));
        assert_eq!(snapshot.errors_of(ErrorClass::InvalidInput), 1);
        assert_eq!(snapshot.errors_by_class.len(), ErrorClass::ALL.len());
    }
}
