//! The sliding time window behind the latency p99 and error-rate thresholds.

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

/// Most samples kept, whatever the window: bounds memory if the interval is tiny.
const MAX_SAMPLES: usize = 4096;

/// One check, plus the operations counted since the previous one.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    latency: Duration,
    failed: bool,
    ops: u64,
    op_errors: u64,
}

/// Check latencies and outcomes over the last `length` of time.
#[derive(Debug)]
pub(crate) struct Window {
    length: Duration,
    min_samples: u64,
    samples: VecDeque<Sample>,
}

impl Window {
    pub(crate) fn new(length: Duration, min_samples: u32) -> Self {
        Self {
            length,
            min_samples: u64::from(min_samples),
            samples: VecDeque::new(),
        }
    }

    /// Adds a check (and the operations since the last one), dropping what left the window.
    pub(crate) fn push(
        &mut self,
        at: Instant,
        latency: Duration,
        failed: bool,
        ops: u64,
        op_errors: u64,
    ) {
        self.samples.push_back(Sample {
            at,
            latency,
            failed,
            ops,
            op_errors,
        });
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
        while let Some(first) = self.samples.front() {
            if at.saturating_duration_since(first.at) > self.length {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// The 99th percentile (nearest rank) of successful checks' latency, once enough are in.
    /// Failed checks are left out: a time-out's latency is the timeout, and failures have
    /// their own alerts.
    pub(crate) fn latency_p99(&self) -> Option<Duration> {
        let mut latencies: Vec<Duration> = self
            .samples
            .iter()
            .filter(|s| !s.failed)
            .map(|s| s.latency)
            .collect();
        if (latencies.len() as u64) < self.min_samples {
            return None;
        }
        latencies.sort_unstable();
        Some(percentile(&latencies, 0.99))
    }

    /// Failed checks and operation errors over all checks and operations, once enough are in.
    pub(crate) fn error_rate(&self) -> Option<f64> {
        let (total, failed) = self.samples.iter().fold((0u64, 0u64), |(t, f), s| {
            (
                t + 1 + s.ops,
                f + u64::from(s.failed) + s.op_errors.min(s.ops),
            )
        });
        if total < self.min_samples || total == 0 {
            return None;
        }
        // Counts far below 2^53: the conversion is exact.
        Some(failed as f64 / total as f64)
    }
}

/// Nearest-rank percentile of sorted values (`q` in 0–1); `ZERO` when empty.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank: ceil(q × n), 1-based.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&values, 0.99), ms(99));
        assert_eq!(percentile(&values, 0.5), ms(50));
        assert_eq!(percentile(&values[..3], 0.99), ms(3));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn old_samples_leave_the_window() {
        let mut window = Window::new(Duration::from_secs(10), 2);
        let start = Instant::now();
        window.push(start, ms(900), false, 0, 0);
        window.push(start + Duration::from_secs(1), ms(2000), true, 0, 0);
        assert_eq!(
            window.latency_p99(),
            None,
            "one success is below the minimum"
        );
        window.push(start + Duration::from_secs(5), ms(10), false, 0, 0);
        assert_eq!(
            window.latency_p99(),
            Some(ms(900)),
            "the failure's latency is left out"
        );
        assert_eq!(window.error_rate(), Some(1.0 / 3.0));
        window.push(start + Duration::from_secs(12), ms(20), false, 0, 0);
        assert_eq!(window.latency_p99(), Some(ms(20)), "the slow check left");
        assert_eq!(window.error_rate(), Some(0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn operations_count_in_the_error_rate() {
        let mut window = Window::new(Duration::from_secs(10), 5);
        window.push(Instant::now(), ms(1), false, 9, 5);
        assert_eq!(window.error_rate(), Some(0.5));
    }
}
