//! What the layer-by-layer benches (`breakdown`, `overhead`) share: the two Keel stacks they
//! compare and the median of their rounds.

use std::time::Duration;

use mongokeel::{Keel, KeelConfig};

/// The full default stack, and one without any optional layer (retry, breaker, health gate),
/// both on a server at `uri`.
pub(crate) async fn full_and_bare(uri: &str) -> (Keel, Keel) {
    let config = || KeelConfig::for_uri(uri).unwrap();
    let full = Keel::builder(config()).build().await.unwrap();
    let bare = Keel::builder(config())
        .without_retry()
        .without_breaker()
        .without_health_gate()
        .build()
        .await
        .unwrap();
    (full, bare)
}

/// The median of a variant's rounds (`None` for a variant that did not run).
pub(crate) fn median(values: &mut [Duration]) -> Option<Duration> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}
