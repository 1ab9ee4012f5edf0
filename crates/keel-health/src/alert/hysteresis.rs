//! Raise-and-clear with hysteresis: the state machine that keeps alerts from flapping.

use crate::{Threshold, alert::Transition};

/// Tracks one alert: raised after `raise_after` values in a row at or above `raise_at`, cleared
/// after `clear_after` values in a row at or below `clear_at`. A value between the two levels
/// keeps the alert as it is and resets both runs.
///
/// ```
/// use keel_health::{Hysteresis, Threshold, Transition};
/// let mut alert = Hysteresis::new(Threshold::new(0.5, 0.2).counts(2, 2));
/// assert_eq!(alert.observe(Some(0.9)), None);
/// assert_eq!(alert.observe(Some(0.9)), Some(Transition::Raised));
/// assert_eq!(alert.observe(Some(0.3)), None); // between the levels: stays raised
/// assert_eq!(alert.observe(Some(0.1)), None);
/// assert_eq!(alert.observe(Some(0.1)), Some(Transition::Cleared));
/// ```
#[derive(Clone, Debug)]
pub struct Hysteresis<T> {
    threshold: Threshold<T>,
    active: bool,
    run: u32,
}

impl<T: PartialOrd + Copy> Hysteresis<T> {
    /// An inactive alert with this threshold.
    pub fn new(threshold: Threshold<T>) -> Self {
        Self {
            threshold,
            active: false,
            run: 0,
        }
    }

    /// Whether the alert is raised.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The threshold.
    pub fn threshold(&self) -> &Threshold<T> {
        &self.threshold
    }

    /// Feeds one value; `None` (not enough data) keeps the state and breaks any run.
    pub fn observe(&mut self, value: Option<T>) -> Option<Transition> {
        let Some(value) = value else {
            self.run = 0;
            return None;
        };
        let pushing = if self.active {
            value <= self.threshold.clear_at
        } else {
            value >= self.threshold.raise_at
        };
        if !pushing {
            self.run = 0;
            return None;
        }
        self.run = self.run.saturating_add(1);
        let needed = if self.active {
            self.threshold.clear_after
        } else {
            self.threshold.raise_after
        };
        if self.run < needed {
            return None;
        }
        self.run = 0;
        self.active = !self.active;
        Some(if self.active {
            Transition::Raised
        } else {
            Transition::Cleared
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transitions(alert: &mut Hysteresis<f64>, values: &[f64]) -> usize {
        values
            .iter()
            .filter(|v| alert.observe(Some(**v)).is_some())
            .count()
    }

    #[test]
    fn a_value_hovering_around_the_raise_level_never_raises() {
        let mut alert = Hysteresis::new(Threshold::new(0.5, 0.2).counts(3, 3));
        let hovering: Vec<f64> = (0..100)
            .map(|i| if i % 3 == 2 { 0.4 } else { 0.6 })
            .collect();
        assert_eq!(transitions(&mut alert, &hovering), 0);
        assert!(!alert.is_active());
    }

    #[test]
    fn a_value_between_the_levels_neither_raises_nor_clears() {
        let mut alert = Hysteresis::new(Threshold::new(0.5, 0.2).counts(1, 1));
        assert_eq!(alert.observe(Some(0.5)), Some(Transition::Raised));
        // Oscillating between the levels: an alert without hysteresis would flap 100 times.
        let oscillating: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 0.45 } else { 0.25 })
            .collect();
        assert_eq!(transitions(&mut alert, &oscillating), 0);
        assert!(alert.is_active());
    }

    #[test]
    fn missing_data_breaks_a_run() {
        let mut alert = Hysteresis::new(Threshold::new(10u32, 0).counts(2, 1));
        assert_eq!(alert.observe(Some(11)), None);
        assert_eq!(alert.observe(None), None);
        assert_eq!(alert.observe(Some(11)), None);
        assert_eq!(alert.observe(Some(12)), Some(Transition::Raised));
    }
}
