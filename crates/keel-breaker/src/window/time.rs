//! Time-based sliding window: a ring of per-interval buckets of atomic counters.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

use tokio::time::Instant;

use super::WindowSnapshot;

const FAILURE_ONE: u64 = 1 << 32;
const CALLS_MASK: u64 = u32::MAX as u64;

/// One interval's counts. `tag` is the interval's index + 1 (0 = never used), so a bucket left
/// over from an earlier lap of the ring is recognised and cleared by the first call that needs it.
#[derive(Debug, Default)]
struct Bucket {
    tag: AtomicU64,
    /// Calls in the low 32 bits, failures in the high 32: one `fetch_add` per call.
    counts: AtomicU64,
    slow: AtomicU32,
}

/// The calls of the last `buckets` intervals of `length / buckets` each.
///
/// The call that moves a bucket to a new interval clears it; calls racing with that clearing
/// (on other threads, within nanoseconds of an interval boundary) may go uncounted.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[Bucket]>,
    bucket_nanos: u64,
    origin: Instant,
}

impl TimeWindow {
    pub(crate) fn new(length: Duration, buckets: u32, origin: Instant) -> Self {
        let buckets = buckets.max(1);
        let bucket_nanos = u64::try_from((length / buckets).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            buckets: (0..buckets).map(|_| Bucket::default()).collect(),
            bucket_nanos,
            origin,
        }
    }

    fn interval(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since).unwrap_or(u64::MAX) / self.bucket_nanos
    }

    fn bucket(&self, interval: u64) -> &Bucket {
        // The remainder is below the bucket count, itself a usize.
        #[allow(clippy::cast_possible_truncation)]
        &self.buckets[(interval % self.buckets.len() as u64) as usize]
    }

    pub(crate) fn record(&self, now: Instant, failure: bool, slow: bool) {
        let interval = self.interval(now);
        let tag = interval.saturating_add(1);
        let bucket = self.bucket(interval);
        let seen = bucket.tag.load(Ordering::Acquire);
        if seen < tag
            && bucket
                .tag
                .compare_exchange(seen, tag, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            bucket.counts.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
        bucket
            .counts
            .fetch_add(1 + if failure { FAILURE_ONE } else { 0 }, Ordering::Relaxed);
        if slow {
            bucket.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, now: Instant) -> WindowSnapshot {
        let current = self.interval(now).saturating_add(1);
        let oldest = current.saturating_sub(self.buckets.len() as u64 - 1).max(1);
        let mut snapshot = WindowSnapshot::default();
        for bucket in &*self.buckets {
            let tag = bucket.tag.load(Ordering::Acquire);
            if (oldest..=current).contains(&tag) {
                let counts = bucket.counts.load(Ordering::Relaxed);
                snapshot.calls += counts & CALLS_MASK;
                snapshot.failures += counts >> 32;
                snapshot.slow += u64::from(bucket.slow.load(Ordering::Relaxed));
            }
        }
        snapshot
    }

    pub(crate) fn reset(&self) {
        for bucket in &*self.buckets {
            bucket.tag.store(0, Ordering::Release);
            bucket.counts.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_leave_the_window_bucket_by_bucket() {
        let origin = Instant::now();
        // 10 s in 10 buckets of 1 s.
        let window = TimeWindow::new(Duration::from_secs(10), 10, origin);
        window.record(Instant::now(), true, false);
        tokio::time::advance(Duration::from_millis(4_500)).await;
        window.record(Instant::now(), false, true);
        let snap = window.snapshot(Instant::now());
        assert_eq!((snap.calls, snap.failures, snap.slow), (2, 1, 1));

        // At 9.999 s the first bucket [0 s, 1 s) is still inside the window…
        tokio::time::advance(Duration::from_millis(5_499)).await;
        assert_eq!(window.snapshot(Instant::now()).calls, 2);
        // …and at 10 s it has rolled out.
        tokio::time::advance(Duration::from_millis(1)).await;
        let snap = window.snapshot(Instant::now());
        assert_eq!((snap.calls, snap.failures, snap.slow), (1, 0, 1));

        // A whole window later nothing is left, even though no call cleared the buckets.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(window.snapshot(Instant::now()), WindowSnapshot::default());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reused_bucket_is_cleared_first() {
        let window = TimeWindow::new(Duration::from_secs(2), 2, Instant::now());
        window.record(Instant::now(), true, true);
        // Two buckets later the same bucket is reused for a new interval.
        tokio::time::advance(Duration::from_secs(2)).await;
        window.record(Instant::now(), false, false);
        let snap = window.snapshot(Instant::now());
        assert_eq!((snap.calls, snap.failures, snap.slow), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn reset_empties_the_window() {
        let window = TimeWindow::new(Duration::from_secs(1), 4, Instant::now());
        window.record(Instant::now(), true, false);
        window.reset();
        assert_eq!(window.snapshot(Instant::now()), WindowSnapshot::default());
    }
}
