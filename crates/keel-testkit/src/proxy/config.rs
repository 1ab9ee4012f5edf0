//! The proxy's current fault settings, published to every connection through a `watch`.

use std::time::Duration;

/// Faults in force. The default forwards faithfully.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ProxyConfig {
    pub(super) latency: Duration,
    pub(super) jitter: Duration,
    pub(super) bandwidth: Option<u64>,
    pub(super) reset_after: Option<u64>,
    pub(super) black_hole: bool,
}

impl ProxyConfig {
    /// This chunk's one-way delay: latency ± a uniform random jitter, floored at zero.
    pub(super) fn delay(&self) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let jitter = self.jitter.as_secs_f64();
        let offset = (rand::random::<f64>() * 2.0 - 1.0) * jitter;
        Duration::from_secs_f64((self.latency.as_secs_f64() + offset).max(0.0))
    }
}
