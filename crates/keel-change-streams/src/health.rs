//! The consumer's health in keel-health's vocabulary: a stopped consumer is `Unhealthy`; one
//! stuck resuming, or whose checkpoint is older than allowed, is `Degraded`.

use std::time::Duration;

use keel_health::HealthStatus;

use crate::ConsumerStatus;

/// Limits for [`crate::RunningConsumer::health`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthLimits {
    /// A consumer resuming for longer than this is stalled (`Degraded`).
    pub stalled_after: Duration,
    /// A checkpoint older than this is `Degraded`: set it to a fraction (e.g. a half) of the
    /// oplog window, so an operator acts before the checkpoint falls off the oplog.
    pub max_checkpoint_age: Duration,
}

impl Default for HealthLimits {
    fn default() -> Self {
        Self {
            stalled_after: Duration::from_secs(60),
            max_checkpoint_age: Duration::from_secs(3600),
        }
    }
}

/// A consumer's health with the reasons, as sentences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerHealth {
    /// Healthy, degraded or unhealthy.
    pub status: HealthStatus,
    /// Why it is not healthy (empty when healthy).
    pub reasons: Vec<String>,
}

/// Judges `status` that has lasted `in_status`, with the checkpoint `checkpoint_age` old.
pub(crate) fn evaluate(
    name: &str,
    status: &ConsumerStatus,
    in_status: Duration,
    checkpoint_age: Option<Duration>,
    limits: HealthLimits,
) -> ConsumerHealth {
    let mut reasons = Vec::new();
    let mut worst = HealthStatus::Healthy;
    match status {
        ConsumerStatus::Stopped { error: Some(error) } => {
            worst = HealthStatus::Unhealthy;
            reasons.push(format!("consumer '{name}' stopped: {error}"));
        }
        ConsumerStatus::Stopped { error: None } => {
            worst = HealthStatus::Unhealthy;
            reasons.push(format!("consumer '{name}' is stopped"));
        }
        ConsumerStatus::Resuming { attempt, class } if in_status >= limits.stalled_after => {
            worst = HealthStatus::Degraded;
            reasons.push(format!(
                "consumer '{name}' has been resuming for {} s ({attempt} attempts, {class})",
                in_status.as_secs()
            ));
        }
        _ => {}
    }
    let consuming = matches!(
        status,
        ConsumerStatus::Running | ConsumerStatus::Resuming { .. } | ConsumerStatus::Snapshotting
    );
    if let Some(age) = checkpoint_age
        && consuming
        && age > limits.max_checkpoint_age
    {
        if worst == HealthStatus::Healthy {
            worst = HealthStatus::Degraded;
        }
        reasons.push(format!(
            "consumer '{name}''s checkpoint is {} s old (limit {} s): it may fall off the oplog",
            age.as_secs(),
            limits.max_checkpoint_age.as_secs()
        ));
    }
    ConsumerHealth {
        status: worst,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn running_with_a_fresh_checkpoint_is_healthy() {
        let h = evaluate(
            "c",
            &ConsumerStatus::Running,
            S(500),
            Some(S(10)),
            HealthLimits::default(),
        );
        assert_eq!(h.status, HealthStatus::Healthy);
        assert!(h.reasons.is_empty());
    }

    #[test]
    fn an_old_checkpoint_is_degraded() {
        let limits = HealthLimits {
            max_checkpoint_age: S(100),
            ..Default::default()
        };
        let h = evaluate("c", &ConsumerStatus::Running, S(0), Some(S(101)), limits);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(h.reasons[0].contains("101 s old"), "{:?}", h.reasons);
    }

    #[test]
    fn resuming_too_long_is_degraded_briefly_is_not() {
        let status = ConsumerStatus::Resuming {
            attempt: 4,
            class: "network",
        };
        let limits = HealthLimits::default();
        assert_eq!(
            evaluate("c", &status, S(5), None, limits).status,
            HealthStatus::Healthy
        );
        let h = evaluate("c", &status, S(61), None, limits);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(h.reasons[0].contains("resuming for 61 s"));
    }

    #[test]
    fn a_stopped_consumer_is_unhealthy_and_a_standby_is_healthy() {
        let stopped = ConsumerStatus::Stopped {
            error: Some("history lost".into()),
        };
        let h = evaluate("c", &stopped, S(0), None, HealthLimits::default());
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert!(h.reasons[0].contains("history lost"));
        let standby = evaluate(
            "c",
            &ConsumerStatus::WaitingForLease,
            S(999),
            Some(S(99_999)),
            HealthLimits::default(),
        );
        assert_eq!(standby.status, HealthStatus::Healthy);
    }
}
