//! A hybrid logical clock: wall-clock milliseconds with a logical counter, so last-writer-wins
//! orders writes causally even when client clocks disagree.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the logical counter below the milliseconds.
const LOGICAL_BITS: u32 = 16;

/// A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014): each timestamp is
/// greater than every timestamp this clock issued or observed before.
#[derive(Debug, Default)]
pub(crate) struct Hlc {
    last: u64,
}

pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Hlc {
    pub(crate) fn new(last: u64) -> Self {
        Self { last }
    }

    /// A new timestamp for a local event.
    pub(crate) fn now(&mut self) -> u64 {
        let physical = wall_ms() << LOGICAL_BITS;
        self.last = physical.max(self.last + 1);
        self.last
    }

    /// Takes in a timestamp seen from another client, so later local ones are greater.
    pub(crate) fn observe(&mut self, remote: u64) {
        self.last = self.last.max(remote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_grow_past_observed_ones_even_from_a_clock_ahead() {
        let mut clock = Hlc::new(0);
        let a = clock.now();
        let ahead = (wall_ms() + 60_000) << LOGICAL_BITS;
        clock.observe(ahead);
        let b = clock.now();
        assert!(b > ahead && b > a);
        assert!(clock.now() > b);
    }
}
