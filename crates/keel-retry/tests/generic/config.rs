//! Bad configurations are typed errors, never panics.

use std::time::Duration;

use keel_retry::{BackoffConfig, BudgetConfig, ConfigError, RetryConfig, RetryLayer};

use crate::support::TestPolicy;

fn build(config: RetryConfig) -> Result<(), ConfigError> {
    RetryLayer::new(TestPolicy::default(), config).map(|_| ())
}

#[test]
fn defaults_are_valid_and_documented_values() {
    let config = RetryConfig::default();
    assert_eq!(build(config), Ok(()));
    assert_eq!(config.max_attempts, 3);
    assert_eq!(config.total_timeout, Some(Duration::from_secs(10)));
    assert_eq!(config.attempt_timeout, None);
    assert_eq!(config.budget, Some(BudgetConfig::default()));
}

#[test]
fn each_bad_setting_has_its_own_error() {
    let base = RetryConfig::default();
    let cases = [
        (
            RetryConfig {
                max_attempts: 0,
                ..base
            },
            ConfigError::ZeroMaxAttempts,
        ),
        (
            RetryConfig {
                total_timeout: Some(Duration::ZERO),
                ..base
            },
            ConfigError::ZeroDuration("total_timeout"),
        ),
        (
            RetryConfig {
                attempt_timeout: Some(Duration::ZERO),
                ..base
            },
            ConfigError::ZeroDuration("attempt_timeout"),
        ),
        (
            RetryConfig {
                backoff: BackoffConfig {
                    base: Duration::from_secs(3),
                    ..BackoffConfig::default()
                },
                ..base
            },
            ConfigError::CapBelowBase {
                base: Duration::from_secs(3),
                cap: Duration::from_secs(2),
            },
        ),
        (
            RetryConfig {
                budget: Some(BudgetConfig {
                    ratio: -0.5,
                    ..BudgetConfig::default()
                }),
                ..base
            },
            ConfigError::InvalidRatio(-0.5),
        ),
        (
            RetryConfig {
                budget: Some(BudgetConfig {
                    window: Duration::from_secs(120),
                    ..BudgetConfig::default()
                }),
                ..base
            },
            ConfigError::InvalidBudgetWindow(Duration::from_secs(120)),
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(build(config), Err(expected.clone()));
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn nan_settings_are_errors_too() {
    let nan_ratio = RetryConfig {
        budget: Some(BudgetConfig {
            ratio: f64::NAN,
            ..BudgetConfig::default()
        }),
        ..RetryConfig::default()
    };
    assert!(matches!(build(nan_ratio), Err(ConfigError::InvalidRatio(r)) if r.is_nan()));
    let nan_multiplier = RetryConfig {
        backoff: BackoffConfig {
            multiplier: f64::NAN,
            ..BackoffConfig::default()
        },
        ..RetryConfig::default()
    };
    assert!(matches!(build(nan_multiplier), Err(ConfigError::InvalidMultiplier(m)) if m.is_nan()));
}
