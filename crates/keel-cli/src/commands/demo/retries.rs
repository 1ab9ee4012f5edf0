//! Counting the retry layer's retries for the status line, from the demo's `Keel` stats: no
//! process-global metrics recorder, so an application's own (Prometheus, say) can run beside it.

use std::sync::OnceLock;

use mongokeel::Keel;

/// The demo's `Keel`, whose retry stats the status line reads.
static KEEL: OnceLock<Keel> = OnceLock::new();

/// Counts the retries of `keel` from now on (the first call wins; the demo builds one).
pub(crate) fn watch(keel: &Keel) {
    let _ = KEEL.set(keel.clone());
}

/// Retries the retry layer scheduled so far (what `keel_retry_attempts_total` counts).
pub(crate) fn count() -> u64 {
    KEEL.get()
        .and_then(Keel::retry_stats)
        .map_or(0, |stats| stats.snapshot().retries)
}
