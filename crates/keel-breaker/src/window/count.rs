//! Count-based sliding window: a ring of the last N outcomes plus running totals.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};

use super::WindowSnapshot;

const PRESENT: u8 = 1;
const FAILURE: u8 = 2;
const SLOW: u8 = 4;

/// The last `N` outcomes in a ring of one byte each, and running totals kept up to date by
/// the difference between the outcome written and the one it evicted.
///
/// Totals are signed: a recorder racing a [`reset`](CountWindow::reset) may subtract an outcome
/// the reset already cleared; reads clamp, and the next reset clears the drift.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        Self {
            slots: (0..size.max(1)).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }

    pub(crate) fn record(&self, failure: bool, slow: bool) {
        let mut new = PRESENT;
        if failure {
            new |= FAILURE;
        }
        if slow {
            new |= SLOW;
        }
        let len = self.slots.len() as u64;
        // The remainder is below the slot count, itself a usize.
        #[allow(clippy::cast_possible_truncation)]
        let index = (self.next.fetch_add(1, Relaxed) % len) as usize;
        let old = self.slots[index].swap(new, Relaxed);
        if old == new {
            // The common steady state (a success evicting a success) touches no total.
            return;
        }
        adjust(&self.calls, old, new, PRESENT);
        adjust(&self.failures, old, new, FAILURE);
        adjust(&self.slow, old, new, SLOW);
    }

    pub(crate) fn snapshot(&self) -> WindowSnapshot {
        let max = self.slots.len() as u64;
        let read = |total: &AtomicI64| u64::try_from(total.load(Relaxed)).unwrap_or(0).min(max);
        WindowSnapshot {
            calls: read(&self.calls),
            failures: read(&self.failures),
            slow: read(&self.slow),
        }
    }

    pub(crate) fn reset(&self) {
        for slot in &*self.slots {
            slot.store(0, Relaxed);
        }
        self.calls.store(0, Relaxed);
        self.failures.store(0, Relaxed);
        self.slow.store(0, Relaxed);
    }
}

fn adjust(total: &AtomicI64, old: u8, new: u8, bit: u8) {
    let delta = i64::from(new & bit != 0) - i64::from(old & bit != 0);
    if delta != 0 {
        total.fetch_add(delta, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(calls: u64, failures: u64, slow: u64) -> WindowSnapshot {
        WindowSnapshot {
            calls,
            failures,
            slow,
        }
    }

    #[test]
    fn counts_until_full_then_evicts_the_oldest() {
        let window = CountWindow::new(3);
        window.record(true, false);
        window.record(false, true);
        assert_eq!(window.snapshot(), snap(2, 1, 1));
        window.record(false, false);
        assert_eq!(window.snapshot(), snap(3, 1, 1));
        // Evicts the first failure.
        window.record(false, false);
        assert_eq!(window.snapshot(), snap(3, 0, 1));
        // Evicts the slow call.
        window.record(true, true);
        assert_eq!(window.snapshot(), snap(3, 1, 1));
    }

    #[test]
    fn reset_empties_the_window() {
        let window = CountWindow::new(2);
        window.record(true, true);
        window.reset();
        assert_eq!(window.snapshot(), snap(0, 0, 0));
        window.record(true, false);
        assert_eq!(window.snapshot(), snap(1, 1, 0));
    }

    #[test]
    fn concurrent_records_keep_totals_exact() {
        let window = std::sync::Arc::new(CountWindow::new(64));
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let window = window.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        window.record((i + t) % 3 == 0, false);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let truth = window
            .slots
            .iter()
            .filter(|s| s.load(Relaxed) & FAILURE != 0)
            .count() as u64;
        let snapshot = window.snapshot();
        assert_eq!(snapshot.calls, 64);
        assert_eq!(snapshot.failures, truth);
    }
}
