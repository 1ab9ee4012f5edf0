//! From `KeelConfig` settings to each layer's own configuration.

use keel_config::KeelConfig;

/// The retry layer's configuration for `config`.
#[cfg(feature = "retry")]
pub(crate) fn retry_config(config: &KeelConfig) -> keel_retry::RetryConfig {
    use keel_config::Jitter as Configured;
    use keel_retry::{BackoffConfig, BudgetConfig, Jitter, RetryConfig};
    let settings = &config.retry;
    let jitter = match settings.jitter {
        Configured::None => Jitter::None,
        Configured::Equal => Jitter::Equal,
        Configured::Decorrelated => Jitter::Decorrelated,
        _ => Jitter::Full,
    };
    RetryConfig {
        max_attempts: settings.max_attempts,
        backoff: BackoffConfig {
            base: settings.initial_backoff,
            cap: settings.max_backoff,
            multiplier: 2.0,
            jitter,
        },
        budget: Some(BudgetConfig {
            ratio: settings.budget_ratio,
            min_per_sec: settings.min_retries_per_second,
            ..BudgetConfig::default()
        }),
        total_timeout: Some(config.timeouts.deadline),
        attempt_timeout: Some(config.timeouts.attempt),
    }
}

/// The breaker's configuration for `config`.
#[cfg(feature = "breaker")]
pub(crate) fn breaker_config(config: &KeelConfig) -> keel_breaker::BreakerConfig {
    use keel_breaker::{BreakerConfig, SlidingWindow, SlowCalls};
    let settings = &config.breaker;
    BreakerConfig {
        window: SlidingWindow::count(settings.window_size),
        minimum_calls: settings.minimum_calls,
        failure_rate_percent: settings.failure_rate_threshold * 100.0,
        slow_calls: (settings.slow_call_rate_threshold < 1.0).then_some(SlowCalls {
            threshold: settings.slow_call_threshold,
            rate_percent: settings.slow_call_rate_threshold * 100.0,
        }),
        consecutive_failures: Some(settings.consecutive_failures),
        open_wait: settings.open_wait,
        max_open_wait: settings.max_open_wait,
        half_open_probes: settings.half_open_probes,
        ..BreakerConfig::default()
    }
}
