//! The retry budget: an outage does not multiply the load (no thundering herd).

use std::{sync::Arc, time::Duration};

use keel_retry::{BudgetConfig, Jitter, RetryBudget, RetryConfig, StopReason};
use tower::Layer;

use crate::support::{Kind, Req, Script, config, layer, send};

fn budgeted(ratio: f64, min_per_sec: u32, max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
        budget: Some(BudgetConfig {
            ratio,
            min_per_sec,
            window: Duration::from_secs(10),
        }),
        ..config(Jitter::Full)
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_failing_requests_retry_at_most_ratio_times_requests_plus_reserve() {
    const REQUESTS: usize = 1000;
    let script = Script::always_failing();
    // Without a budget these requests would reach the server 3 000 times.
    let mut service = layer(budgeted(0.1, 1, 3)).layer(script.service());
    let mut exhausted = 0;
    for _ in 0..REQUESTS {
        let err = send(&mut service, Req::plain()).await.unwrap_err();
        if err.reason == Some(StopReason::BudgetExhausted) {
            exhausted += 1;
        }
    }
    let retries = script.calls() - REQUESTS;
    // ratio × requests + min_per_sec × window = 100 + 10.
    assert_eq!(retries, 110, "the budget allows exactly this many");
    assert!(
        exhausted >= REQUESTS - retries,
        "most requests were refused a retry"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_stops_retries_with_its_reason() {
    let script = Script::always_failing();
    let mut service = layer(budgeted(0.0, 1, 5)).layer(script.service());
    // Reserve: 1 retry/s × 10 s = 10 retries; the first request takes 4, the second 4,
    // the third the last 2.
    let mut attempts = Vec::new();
    for _ in 0..4 {
        let err = send(&mut service, Req::plain()).await.unwrap_err();
        attempts.push((err.attempts, err.reason));
    }
    assert_eq!(
        attempts,
        [
            (Some(5), Some(StopReason::MaxAttempts)),
            (Some(5), Some(StopReason::MaxAttempts)),
            (Some(3), Some(StopReason::BudgetExhausted)),
            (Some(1), Some(StopReason::BudgetExhausted)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_for_another_reason_spends_no_token() {
    let script = Script::new([Err(Kind::Fatal)]);
    let layer = layer(budgeted(0.0, 1, 5));
    let budget = Arc::clone(layer.budget().unwrap());
    let mut service = layer.layer(script.service());
    send(&mut service, Req::plain()).await.unwrap_err();
    assert_eq!(budget.available(), 10);
}

#[tokio::test(start_paused = true)]
async fn services_from_one_layer_share_its_budget() {
    let script = Script::always_failing();
    let layer = layer(budgeted(0.0, 1, 11));
    let mut first = layer.layer(script.service());
    let mut second = layer.layer(script.service());
    send(&mut first, Req::plain()).await.unwrap_err();
    let err = send(&mut second, Req::plain()).await.unwrap_err();
    assert_eq!(
        (err.attempts, err.reason),
        (Some(1), Some(StopReason::BudgetExhausted))
    );
}

#[tokio::test(start_paused = true)]
async fn a_budget_can_be_shared_between_layers_or_disabled() {
    let shared = Arc::new(
        RetryBudget::new(BudgetConfig {
            ratio: 0.0,
            min_per_sec: 1,
            window: Duration::from_secs(1),
        })
        .unwrap(),
    );
    let script = Script::always_failing();
    let mut a = layer(budgeted(0.2, 10, 3))
        .with_budget(Some(Arc::clone(&shared)))
        .layer(script.service());
    let err = send(&mut a, Req::plain()).await.unwrap_err();
    assert_eq!(err.reason, Some(StopReason::BudgetExhausted));
    assert_eq!(shared.available(), 0);

    let mut unbounded = layer(budgeted(0.0, 0, 3))
        .with_budget(None)
        .layer(script.service());
    let err = send(&mut unbounded, Req::plain()).await.unwrap_err();
    assert_eq!(err.reason, Some(StopReason::MaxAttempts));
}
