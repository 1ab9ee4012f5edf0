//! Every check of a [`HealthConfig`] in one place: [`HealthConfig::validate`] returns the first
//! problem as a [`ConfigError`], [`HealthConfig::problems`] all of them with the field, the
//! value and a fix; plus the reason behind each default.

use std::fmt::Debug;
use std::time::Duration;

use super::{HealthConfig, Threshold};
use crate::ConfigError;

pub use keel_settings::SettingError;

/// One failed check.
pub(super) struct Check {
    pub(super) error: ConfigError,
    field: &'static str,
    value: String,
    fix: String,
}

/// The paths of one threshold's parts.
struct ThresholdFields {
    name: &'static str,
    clear_at: &'static str,
    raise_after: &'static str,
    clear_after: &'static str,
}

const fn threshold_fields(
    name: &'static str,
    clear_at: &'static str,
    raise_after: &'static str,
    clear_after: &'static str,
) -> ThresholdFields {
    ThresholdFields {
        name,
        clear_at,
        raise_after,
        clear_after,
    }
}

impl HealthConfig {
    /// Every field, in the order listings show them, with why its default is what it is.
    pub const REASONS: &'static [(&'static str, &'static str)] = &[
        (
            "interval",
            "twice as often as Kubernetes' default probe period, so a probe never reads a stale verdict; one ping per 5s costs the server nothing",
        ),
        (
            "jitter",
            "a ±10% spread keeps instances started together from pinging in lock-step",
        ),
        (
            "check_timeout",
            "a ping is the cheapest command there is; two seconds means the server or the network is in trouble",
        ),
        (
            "window",
            "a minute of checks and operations: long enough for a stable p99, short enough to follow an incident",
        ),
        ("min_samples", "a rate over two samples is noise"),
        (
            "latency.raise_at",
            "a healthy ping answers in milliseconds; half a second at p99 is a struggling server",
        ),
        (
            "latency.clear_at",
            "clears well below the raise level so a latency hovering around it does not flap",
        ),
        (
            "latency.raise_after",
            "three evaluations in a row (15s at the default interval): a single odd value raises nothing",
        ),
        (
            "latency.clear_after",
            "three evaluations in a row: a single good value clears nothing",
        ),
        (
            "error_rate.raise_at",
            "a quarter of checks and infrastructure errors failing is an incident, not noise",
        ),
        (
            "error_rate.clear_at",
            "clears only near normal, so an error rate hovering around the raise level does not flap",
        ),
        (
            "error_rate.raise_after",
            "three evaluations in a row: a single odd value raises nothing",
        ),
        (
            "error_rate.clear_after",
            "three evaluations in a row: a single good value clears nothing",
        ),
        (
            "pool_saturation.raise_at",
            "at 90% of the pool in use the next burst queues for connections",
        ),
        (
            "pool_saturation.clear_at",
            "clears at 70% so a pool hovering around the raise level does not flap",
        ),
        (
            "pool_saturation.raise_after",
            "three evaluations in a row: a single busy moment raises nothing",
        ),
        (
            "pool_saturation.clear_after",
            "three evaluations in a row: a single quiet moment clears nothing",
        ),
        (
            "failed_checks.raise_at",
            "three failed pings in a row is an outage, not a lost packet",
        ),
        (
            "failed_checks.clear_at",
            "no failed check in a row: the last ping succeeded",
        ),
        (
            "failed_checks.raise_after",
            "the count of failures in a row already is the evidence: raise at once",
        ),
        (
            "failed_checks.clear_after",
            "two successes in a row end an outage",
        ),
        (
            "recovery.enabled",
            "a reset is cheap next to an outage, and pool-core refuses resets that come too fast",
        ),
        (
            "recovery.after_failed_checks",
            "the driver reconnects by itself after most outages; only a client stuck well past its heartbeat needs a fresh pool",
        ),
        (
            "recovery.min_interval",
            "twice pool-core's own reset_min_interval, since every reset drops every pooled connection",
        ),
    ];

    /// Every problem with these settings, in check order; empty exactly when
    /// [`HealthConfig::validate`] accepts them.
    ///
    /// ```
    /// let mut config = keel_health::HealthConfig::default();
    /// config.jitter = 1.5;
    /// config.error_rate.clear_at = 0.9;
    /// let fields: Vec<_> = config.problems().iter().map(|p| p.field).collect();
    /// assert_eq!(fields, ["jitter", "error_rate.clear_at"]);
    /// ```
    pub fn problems(&self) -> Vec<SettingError> {
        self.checks()
            .into_iter()
            .map(|check| {
                SettingError::new(check.field, check.value, check.error.to_string(), check.fix)
            })
            .collect()
    }

    pub(super) fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for (field, duration, example) in [
            ("interval", self.interval, "5s"),
            ("check_timeout", self.check_timeout, "2s"),
            ("window", self.window, "1m"),
            ("recovery.min_interval", self.recovery.min_interval, "1m"),
        ] {
            if duration.is_zero() {
                checks.push(Check {
                    error: ConfigError::ZeroDuration { field },
                    field,
                    value: "0s".to_owned(),
                    fix: format!("set a positive duration such as \"{example}\""),
                });
            }
        }
        if !(0.0..1.0).contains(&self.jitter) {
            checks.push(Check {
                error: ConfigError::BadJitter(self.jitter),
                field: "jitter",
                value: self.jitter.to_string(),
                fix: "write a fraction below 1 such as 0.1 (±10%)".to_owned(),
            });
        }
        for (field, count) in [
            ("min_samples", self.min_samples),
            ("pool_max_size", self.pool_max_size),
            (
                "recovery.after_failed_checks",
                self.recovery.after_failed_checks,
            ),
        ] {
            if count == 0 {
                checks.push(zero_count(field));
            }
        }
        for (fields, threshold) in [
            (
                threshold_fields(
                    "error_rate",
                    "error_rate.clear_at",
                    "error_rate.raise_after",
                    "error_rate.clear_after",
                ),
                self.error_rate,
            ),
            (
                threshold_fields(
                    "pool_saturation",
                    "pool_saturation.clear_at",
                    "pool_saturation.raise_after",
                    "pool_saturation.clear_after",
                ),
                self.pool_saturation,
            ),
        ] {
            for (part, value) in [
                ("raise_at", threshold.raise_at),
                ("clear_at", threshold.clear_at),
            ] {
                if !(0.0..=1.0).contains(&value) {
                    let field = if part == "raise_at" {
                        raise_at_field(fields.name)
                    } else {
                        fields.clear_at
                    };
                    checks.push(Check {
                        error: ConfigError::BadRatio {
                            field: fields.name,
                            value,
                        },
                        field,
                        value: value.to_string(),
                        fix: "write a fraction between 0 and 1 such as 0.25".to_owned(),
                    });
                }
            }
            check_threshold(&mut checks, &fields, &threshold, |v| v.to_string());
        }
        check_threshold(
            &mut checks,
            &threshold_fields(
                "latency",
                "latency.clear_at",
                "latency.raise_after",
                "latency.clear_after",
            ),
            &self.latency,
            |v: Duration| keel_settings::shown(v),
        );
        check_threshold(
            &mut checks,
            &threshold_fields(
                "failed_checks",
                "failed_checks.clear_at",
                "failed_checks.raise_after",
                "failed_checks.clear_after",
            ),
            &self.failed_checks,
            |v| v.to_string(),
        );
        checks
    }
}

fn raise_at_field(name: &'static str) -> &'static str {
    match name {
        "error_rate" => "error_rate.raise_at",
        _ => "pool_saturation.raise_at",
    }
}

fn zero_count(field: &'static str) -> Check {
    Check {
        error: ConfigError::ZeroCount { field },
        field,
        value: "0".to_owned(),
        fix: "write a whole number of 1 or more".to_owned(),
    }
}

/// The checks of [`Threshold::validate`], naming the part that is wrong.
fn check_threshold<T: PartialOrd + Copy + Debug>(
    checks: &mut Vec<Check>,
    fields: &ThresholdFields,
    threshold: &Threshold<T>,
    show: impl Fn(T) -> String,
) {
    let Err(error) = threshold.validate(fields.name) else {
        return;
    };
    let (field, value, fix) = match error {
        ConfigError::ZeroCount { .. } if threshold.raise_after == 0 => (
            fields.raise_after,
            "0".to_owned(),
            "write a whole number of 1 or more".to_owned(),
        ),
        ConfigError::ZeroCount { .. } => (
            fields.clear_after,
            "0".to_owned(),
            "write a whole number of 1 or more".to_owned(),
        ),
        _ => (
            fields.clear_at,
            show(threshold.clear_at),
            format!(
                "make clear_at at most raise_at ({}), so the alert can clear",
                show(threshold.raise_at)
            ),
        ),
    };
    checks.push(Check {
        error,
        field,
        value,
        fix,
    });
}
