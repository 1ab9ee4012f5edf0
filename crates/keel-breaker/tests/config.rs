//! Invalid configurations are refused with a typed error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_breaker::{Breaker, BreakerConfig, ConfigError, SlidingWindow, SlowCalls};

fn refused(config: BreakerConfig) -> ConfigError {
    Breaker::new("t", config).expect_err("the configuration should be refused")
}

#[test]
fn default_config_is_valid() {
    assert_eq!(BreakerConfig::default().validate(), Ok(()));
}

#[test]
fn rates_must_be_percentages() {
    for bad in [150.0, 0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = refused(BreakerConfig {
            failure_rate_percent: bad,
            ..BreakerConfig::default()
        });
        assert!(
            matches!(
                err,
                ConfigError::RateOutOfRange {
                    field: "failure_rate_percent",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
    let err = refused(BreakerConfig {
        slow_calls: Some(SlowCalls {
            rate_percent: 100.5,
            ..SlowCalls::default()
        }),
        ..BreakerConfig::default()
    });
    assert_eq!(
        err.to_string(),
        "slow_calls.rate_percent must be a percentage greater than 0 and at most 100, got 100.5"
    );
}

#[test]
fn windows_must_not_be_empty_or_huge() {
    let with = |window| BreakerConfig {
        window,
        minimum_calls: 1,
        ..BreakerConfig::default()
    };
    assert!(matches!(
        refused(with(SlidingWindow::count(0))),
        ConfigError::EmptyWindow(_)
    ));
    assert!(matches!(
        refused(with(SlidingWindow::time(Duration::ZERO))),
        ConfigError::EmptyWindow(_)
    ));
    assert!(matches!(
        refused(with(SlidingWindow::Time {
            length: Duration::from_secs(1),
            buckets: 0
        })),
        ConfigError::EmptyWindow(_)
    ));
    assert!(matches!(
        refused(with(SlidingWindow::count(2_000_000))),
        ConfigError::WindowTooLarge(_)
    ));
    assert!(matches!(
        refused(with(SlidingWindow::Time {
            length: Duration::from_millis(10),
            buckets: 100
        })),
        ConfigError::WindowTooLarge(_)
    ));
}

#[test]
fn counts_must_be_positive_and_reachable() {
    assert_eq!(
        refused(BreakerConfig {
            half_open_probes: 0,
            ..BreakerConfig::default()
        }),
        ConfigError::Zero("half_open_probes")
    );
    assert_eq!(
        refused(BreakerConfig {
            minimum_calls: 0,
            ..BreakerConfig::default()
        }),
        ConfigError::Zero("minimum_calls")
    );
    assert_eq!(
        refused(BreakerConfig {
            consecutive_failures: Some(0),
            ..BreakerConfig::default()
        }),
        ConfigError::Zero("consecutive_failures")
    );
    assert_eq!(
        refused(BreakerConfig {
            window: SlidingWindow::count(10),
            minimum_calls: 11,
            ..BreakerConfig::default()
        }),
        ConfigError::MinimumCallsExceedWindow {
            minimum_calls: 11,
            window: 10
        }
    );
}

#[test]
fn waits_must_be_sensible() {
    assert_eq!(
        refused(BreakerConfig {
            open_wait: Duration::ZERO,
            ..BreakerConfig::default()
        }),
        ConfigError::ZeroDuration("open_wait")
    );
    assert!(matches!(
        refused(BreakerConfig {
            open_wait_multiplier: 0.5,
            ..BreakerConfig::default()
        }),
        ConfigError::InvalidMultiplier(_)
    ));
    assert!(matches!(
        refused(BreakerConfig {
            open_wait_multiplier: f64::NAN,
            ..BreakerConfig::default()
        }),
        ConfigError::InvalidMultiplier(_)
    ));
    assert!(matches!(
        refused(BreakerConfig {
            max_open_wait: Duration::from_secs(1),
            ..BreakerConfig::default()
        }),
        ConfigError::MaxOpenWaitBelowOpenWait { .. }
    ));
    assert_eq!(
        refused(BreakerConfig {
            slow_calls: Some(SlowCalls {
                threshold: Duration::ZERO,
                rate_percent: 50.0
            }),
            ..BreakerConfig::default()
        }),
        ConfigError::ZeroDuration("slow_calls.threshold")
    );
}

#[test]
fn name_must_not_be_empty() {
    assert_eq!(
        Breaker::new("", BreakerConfig::default()).unwrap_err(),
        ConfigError::EmptyName
    );
}
