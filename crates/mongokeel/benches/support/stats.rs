//! Medians with their spread (the interquartile range), for figures taken over interleaved
//! rounds on a machine whose noise is not normally distributed.

use std::fmt;

/// The median and the quartiles of a set of values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) q1: f64,
    pub(crate) q3: f64,
}

impl Spread {
    /// The spread of `values` (`None` when there are none).
    pub(crate) fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut sorted: Vec<f64> = values.into_iter().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            // Linear interpolation between the closest ranks.
            let rank = q * (sorted.len() - 1) as f64;
            let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
        };
        Some(Self {
            median: at(0.5),
            q1: at(0.25),
            q3: at(0.75),
        })
    }
}

/// Microseconds: `12.3 µs [12.1–12.6]`.
pub(crate) struct Micros(pub(crate) Option<Spread>);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{:>7.1} µs [{:.1}–{:.1}]", s.median, s.q1, s.q3),
            None => write!(f, "{:>7} (no thread CPU clock here)", "n/a"),
        }
    }
}

/// A ratio: `0.991 [0.985–0.996]`.
pub(crate) struct Ratio(pub(crate) Option<Spread>);

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{:.3} [{:.3}–{:.3}]", s.median, s.q1, s.q3),
            None => write!(f, "n/a"),
        }
    }
}
