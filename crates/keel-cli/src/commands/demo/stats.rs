//! What the workload measured: outcome counters, latencies and failure classes, shared by the
//! workers, the live status line and the final report.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_core::{Error, ErrorKind};

use super::{lock, retries};

/// How an operation ended, from the caller's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It returned `Ok`.
    Ok,
    /// Keel refused it without trying (circuit open, overloaded, shutting down).
    FailedFast,
    /// It was tried (and retried where safe) and still failed.
    Failed,
}

impl Outcome {
    /// The outcome of a finished call.
    pub(crate) fn of<T>(result: &Result<T, Error>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(error) if failed_fast(error) => Outcome::FailedFast,
            Err(_) => Outcome::Failed,
        }
    }
}

/// Whether Keel answered without sending anything to the database.
fn failed_fast(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::CircuitOpen | ErrorKind::Overloaded | ErrorKind::ShuttingDown
    )
}

/// Counters shared by every worker. Cheap to update from many tasks at once.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    ok: AtomicU64,
    failed_fast: AtomicU64,
    failed: AtomicU64,
    read_misses: AtomicU64,
    samples: Mutex<Samples>,
    failures: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Default)]
struct Samples {
    /// Every latency of the run, in microseconds.
    all: Vec<u32>,
    /// The latencies since the status line last looked.
    recent: Vec<u32>,
}

/// A moment's view of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Calls that returned `Ok`.
    pub(crate) ok: u64,
    /// Calls Keel refused without trying.
    pub(crate) failed_fast: u64,
    /// Calls that failed after being tried.
    pub(crate) failed: u64,
    /// Retries the retry layer started (not calls: one call may be retried several times).
    pub(crate) retried: u64,
    /// Reads or updates of an acknowledged document that did not find it.
    pub(crate) read_misses: u64,
}

impl Counts {
    /// Every finished call.
    pub(crate) fn total(&self) -> u64 {
        self.ok + self.failed_fast + self.failed
    }
}

impl Stats {
    /// Records a finished call: its outcome, its latency and, for a failure, its class.
    pub(crate) fn record<T>(&self, result: &Result<T, Error>, took: Duration) {
        let counter = match Outcome::of(result) {
            Outcome::Ok => &self.ok,
            Outcome::FailedFast => &self.failed_fast,
            Outcome::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = result {
            let label = format!("{} ({})", error.class(), error.kind().as_str());
            *lock(&self.failures).entry(label).or_default() += 1;
        }
        let micros = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        let mut samples = lock(&self.samples);
        samples.all.push(micros);
        samples.recent.push(micros);
    }

    /// Records that an acknowledged document was not found where it must be.
    pub(crate) fn read_miss(&self) {
        self.read_misses.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            ok: self.ok.load(Ordering::Relaxed),
            failed_fast: self.failed_fast.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: retries::count(),
            read_misses: self.read_misses.load(Ordering::Relaxed),
        }
    }

    /// The latencies recorded since the last call, emptying the list.
    pub(crate) fn take_recent(&self) -> Vec<u32> {
        std::mem::take(&mut lock(&self.samples).recent)
    }

    /// The latency percentiles of the whole run.
    pub(crate) fn latency(&self) -> Latency {
        Latency::of(lock(&self.samples).all.clone())
    }

    /// Failures by class and kind, most frequent first.
    pub(crate) fn failures(&self) -> Vec<(String, u64)> {
        let mut list: Vec<_> = lock(&self.failures)
            .iter()
            .map(|(label, n)| (label.clone(), *n))
            .collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list
    }
}

/// Latency percentiles of a set of calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Latency {
    /// The median.
    pub(crate) p50: Duration,
    /// The 99th percentile.
    pub(crate) p99: Duration,
    /// The slowest call.
    pub(crate) max: Duration,
}

impl Latency {
    /// The percentiles of `micros` (empty: all zero).
    pub(crate) fn of(mut micros: Vec<u32>) -> Self {
        micros.sort_unstable();
        let at = |q: f64| -> Duration {
            if micros.is_empty() {
                return Duration::ZERO;
            }
            // Nearest rank: the smallest sample with at least q of the samples at or below it.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            Duration::from_micros(u64::from(micros[rank - 1]))
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// A latency the way a person reads it: `850 µs`, `12 ms`, `1.4 s`.
pub(crate) fn human(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 10_000 {
        format!("{:.1} ms", duration.as_secs_f64() * 1e3)
    } else if micros < 1_000_000 {
        format!("{} ms", micros / 1_000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let latency = Latency::of((1..=100).collect());
        assert_eq!(latency.p50, Duration::from_micros(50));
        assert_eq!(latency.p99, Duration::from_micros(99));
        assert_eq!(latency.max, Duration::from_micros(100));
        assert_eq!(Latency::of(Vec::new()), Latency::default());
        assert_eq!(Latency::of(vec![7]).p99, Duration::from_micros(7));
    }

    #[test]
    fn outcomes_tell_refusals_from_failures() {
        let open: Result<(), Error> = Err(Error::circuit_open(Duration::from_secs(1)));
        assert_eq!(Outcome::of(&open), Outcome::FailedFast);
        let late: Result<(), Error> = Err(Error::deadline_exceeded("too slow"));
        assert_eq!(Outcome::of(&late), Outcome::Failed);
        assert_eq!(Outcome::of(&Ok::<(), Error>(())), Outcome::Ok);

        let stats = Stats::default();
        stats.record(&open, Duration::from_micros(5));
        stats.record(&late, Duration::from_micros(9));
        stats.record(&Ok::<(), Error>(()), Duration::from_micros(1));
        let counts = stats.counts();
        assert_eq!(
            (counts.ok, counts.failed_fast, counts.failed, counts.total()),
            (1, 1, 1, 3)
        );
        assert_eq!(stats.take_recent().len(), 3);
        assert!(stats.take_recent().is_empty());
        assert_eq!(stats.latency().max, Duration::from_micros(9));
        assert_eq!(stats.failures().len(), 2);
    }

    #[test]
    fn human_latencies() {
        assert_eq!(human(Duration::from_micros(850)), "850 µs");
        assert_eq!(human(Duration::from_micros(2_340)), "2.3 ms");
        assert_eq!(human(Duration::from_millis(48)), "48 ms");
        assert_eq!(human(Duration::from_millis(1_400)), "1.4 s");
    }
}
