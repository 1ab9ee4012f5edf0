//! The breaker's states and their lock-free encoding (state + generation in one atomic word).

use std::fmt;

/// Where a circuit breaker stands.
///
/// The `keel_breaker_state` gauge publishes [`BreakerState::gauge_value`].
///
/// ```
/// use keel_breaker::{Breaker, BreakerConfig, BreakerState};
///
/// let breaker = Breaker::new("cluster0", BreakerConfig::default())?;
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// breaker.force_open();
/// assert!(breaker.state().is_open());
/// assert_eq!(breaker.state().as_str(), "forced_open");
/// assert_eq!(breaker.state().gauge_value(), 3.0);
/// # Ok::<(), keel_breaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass and their outcomes are counted (gauge 0).
    Closed,
    /// Calls fail at once until the open wait has passed (gauge 1).
    Open,
    /// A few probe calls pass; their outcomes decide between closed and open (gauge 2).
    HalfOpen,
    /// An operator opened the circuit; it stays open until [`reset`](crate::Breaker::reset)
    /// (gauge 3).
    ForcedOpen,
    /// An operator disabled the breaker: every call passes and nothing trips it until
    /// [`reset`](crate::Breaker::reset) (gauge 4).
    Disabled,
}

impl BreakerState {
    /// The value of the `keel_breaker_state` gauge: 0 closed, 1 open, 2 half-open,
    /// 3 forced open, 4 disabled.
    pub fn gauge_value(self) -> f64 {
        f64::from(self.to_bits())
    }

    /// A short stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
        }
    }

    /// Whether calls are refused (apart from half-open probes).
    pub fn is_open(self) -> bool {
        matches!(self, BreakerState::Open | BreakerState::ForcedOpen)
    }

    fn to_bits(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::Disabled => 4,
        }
    }

    fn from_bits(bits: u8) -> Self {
        match bits {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::ForcedOpen,
            4 => BreakerState::Disabled,
            _ => BreakerState::Closed,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state and the generation it was entered in, packed so one atomic load reads both.
///
/// A permit remembers the generation it was granted in; an outcome recorded after the state has
/// changed since is not allowed to influence the new state (a slow call admitted before the trip
/// must not count as a half-open probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateWord {
    pub(crate) state: BreakerState,
    pub(crate) generation: u64,
}

impl StateWord {
    pub(crate) fn pack(self) -> u64 {
        (self.generation << 8) | u64::from(self.state.to_bits())
    }

    pub(crate) fn unpack(word: u64) -> Self {
        Self {
            // Truncation is the point: the low byte holds the state.
            state: BreakerState::from_bits((word & 0xff) as u8),
            generation: word >> 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        for state in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
            BreakerState::ForcedOpen,
            BreakerState::Disabled,
        ] {
            let word = StateWord {
                state,
                generation: 123_456,
            };
            assert_eq!(StateWord::unpack(word.pack()), word);
        }
    }

    #[test]
    fn gauge_values_are_documented_ones() {
        assert_eq!(BreakerState::Closed.gauge_value(), 0.0);
        assert_eq!(BreakerState::Disabled.gauge_value(), 4.0);
    }
}
