//! Settings for Keel's circuit breaker layer (mapped onto `keel-breaker` by the facade).

use std::time::Duration;

/// When the breaker opens, how long it stays open, and how it probes for recovery.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Failure fraction over the window (0–1] at which the breaker opens.
    pub failure_rate_threshold: f64,
    /// Number of most recent calls the rates are computed over.
    pub window_size: u32,
    /// Calls needed in the window before rates are trusted; at most `window_size`.
    pub minimum_calls: u32,
    /// A call slower than this counts as slow.
    pub slow_call_threshold: Duration,
    /// Slow fraction (0–1] at which the breaker opens; 1 means slowness alone never opens it
    /// unless every call is slow.
    pub slow_call_rate_threshold: f64,
    /// Consecutive failures that open the breaker at once, whatever the window says.
    pub consecutive_failures: u32,
    /// Time the breaker stays open before letting probes through.
    pub open_wait: Duration,
    /// Ceiling for the open time, which doubles each time a probe fails.
    pub max_open_wait: Duration,
    /// Probe calls allowed while half-open; all must succeed to close.
    pub half_open_probes: u32,
}
