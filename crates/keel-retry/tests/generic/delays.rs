//! Exact delays for every jitter strategy, and `retry_after` hints.

use keel_retry::{FixedJitter, Jitter, SeededJitter, StopReason};
use tokio::time::Instant;
use tower::Layer;

use crate::support::{Kind, Req, Script, config, layer, ms, send};

async fn offsets_with(jitter: Jitter, unit: f64) -> Vec<std::time::Duration> {
    let script = Script::always_failing();
    let mut service = layer(config(jitter))
        .with_jitter_source(FixedJitter(unit))
        .layer(script.service());
    let start = Instant::now();
    let err = send(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(err.reason, Some(StopReason::MaxAttempts));
    assert_eq!(err.attempts, Some(5));
    script.offsets(start)
}

#[tokio::test(start_paused = true)]
async fn no_jitter_doubles_to_the_cap() {
    // Delays 100, 200, 400, 800 ms.
    assert_eq!(
        offsets_with(Jitter::None, 0.7).await,
        [0, 100, 300, 700, 1500].map(ms)
    );
}

#[tokio::test(start_paused = true)]
async fn full_jitter_scales_the_whole_delay() {
    // Half of 100, 200, 400, 800.
    assert_eq!(
        offsets_with(Jitter::Full, 0.5).await,
        [0, 50, 150, 350, 750].map(ms)
    );
    assert_eq!(
        offsets_with(Jitter::Full, 0.0).await,
        [0, 0, 0, 0, 0].map(ms)
    );
}

#[tokio::test(start_paused = true)]
async fn equal_jitter_keeps_half_the_delay() {
    // 50 + 0..50, 100 + 0..100, ...
    assert_eq!(
        offsets_with(Jitter::Equal, 0.0).await,
        [0, 50, 150, 350, 750].map(ms)
    );
    assert_eq!(
        offsets_with(Jitter::Equal, 0.5).await,
        [0, 75, 225, 525, 1125].map(ms)
    );
}

#[tokio::test(start_paused = true)]
async fn decorrelated_jitter_grows_from_the_previous_delay() {
    // 100 + 0.5 × (300 − 100) = 200; 100 + 0.5 × (600 − 100) = 350;
    // 100 + 0.5 × (1000 (cap) − 100) = 550; again 550.
    assert_eq!(
        offsets_with(Jitter::Decorrelated, 0.5).await,
        [0, 200, 550, 1100, 1650].map(ms)
    );
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_is_repeatable_and_within_bounds() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let script = Script::always_failing();
        let mut service = layer(config(Jitter::Full))
            .with_jitter_source(SeededJitter::new(99))
            .layer(script.service());
        let mut delays = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            send(&mut service, Req::plain()).await.unwrap_err();
            let offsets = script.offsets(start);
            let offsets = &offsets[offsets.len() - 5..];
            for (retry, pair) in offsets.windows(2).enumerate() {
                let delay = pair[1] - pair[0];
                let ceiling = ms(100 * (1 << retry)).min(ms(1000));
                assert!(delay <= ceiling, "retry {retry}: {delay:?} > {ceiling:?}");
                delays.push(delay);
            }
        }
        runs.push(delays);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].windows(2).any(|w| w[0] != w[1]), "jitter must vary");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_hint_lengthens_the_delay() {
    let script = Script::new([Err(Kind::Hinted(ms(1500))), Ok(7)]);
    let mut service = layer(config(Jitter::None)).layer(script.service());
    let start = Instant::now();
    assert_eq!(send(&mut service, Req::plain()).await, Ok(7));
    assert_eq!(
        script.offsets(start),
        [ms(0), ms(1500)],
        "beyond the 1 s cap too"
    );
}

#[tokio::test(start_paused = true)]
async fn a_short_hint_never_shortens_the_backoff() {
    let script = Script::new([Err(Kind::Hinted(ms(10))), Ok(7)]);
    let mut service = layer(config(Jitter::None)).layer(script.service());
    let start = Instant::now();
    assert_eq!(send(&mut service, Req::plain()).await, Ok(7));
    assert_eq!(script.offsets(start), [ms(0), ms(100)]);
}
