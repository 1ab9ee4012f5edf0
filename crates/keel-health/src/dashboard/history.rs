//! The history ring buffer: one sample per resolution step, the oldest dropped first.

use std::collections::VecDeque;

use serde::Serialize;

/// One point of the dashboard's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: u64,
    /// Health status name.
    pub status: &'static str,
    /// Connection state name.
    pub connection: &'static str,
    /// Breaker state name, if watched.
    pub breaker: Option<&'static str>,
    /// Pool connections in use.
    pub pool_in_use: u64,
    /// Pool connections open.
    pub pool_open: u64,
    /// The pool's maximum size.
    pub pool_max: u32,
    /// Operations per second since the previous sample.
    pub ops_rate: f64,
    /// Failed operations per second since the previous sample.
    pub error_rate: f64,
    /// Operation latency percentiles over the last minute, in milliseconds.
    pub p50_ms: Option<f64>,
    /// See `p50_ms`.
    pub p90_ms: Option<f64>,
    /// See `p50_ms`.
    pub p99_ms: Option<f64>,
    /// The last health check's latency, in milliseconds.
    pub ping_ms: Option<f64>,
}

#[derive(Debug)]
pub(crate) struct History {
    capacity: usize,
    samples: VecDeque<Sample>,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            samples: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub(crate) fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64) -> Sample {
        Sample {
            t,
            status: "healthy",
            connection: "connected",
            breaker: None,
            pool_in_use: 0,
            pool_open: 0,
            pool_max: 10,
            ops_rate: 0.0,
            error_rate: 0.0,
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            ping_ms: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_newest() {
        let mut history = History::new(3);
        for t in 0..5 {
            history.push(sample(t));
        }
        assert_eq!(history.len(), 3);
        let kept: Vec<u64> = history.samples().map(|s| s.t).collect();
        assert_eq!(kept, [2, 3, 4]);
    }
}
