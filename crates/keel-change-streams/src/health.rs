//! The consumer's health in keel-health's vocabulary: a stopped consumer is `Unhealthy`; one
//! stalled (resuming, or holding events it cannot get through, for longer than allowed) or
//! whose checkpoint is too far back in the oplog window is `Degraded`.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use keel_health::HealthStatus;
use mongodb::bson::Timestamp;
use tokio::time::Instant;

use crate::{ConsumerStatus, OplogWindow};

/// When a consumer counts as degraded ([`crate::ChangeConsumerBuilder::health_limits`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthLimits {
    /// Stalled: resuming (or starting), or holding read events without getting one through the
    /// handler and committed, for longer than this (default 60 s).
    pub stalled_after: Duration,
    /// Degraded when the checkpoint is further behind the newest oplog entry than this
    /// fraction of the oplog window (default 0.5), so an operator acts before it falls off.
    pub oplog_window_fraction: f64,
    /// Also degraded when this consumer stored no checkpoint for this long (default: off; for
    /// servers whose oplog this user cannot read).
    pub max_checkpoint_age: Option<Duration>,
    /// How often the health is judged and the oplog window read (default 10 s).
    pub check_every: Duration,
}

impl Default for HealthLimits {
    fn default() -> Self {
        Self {
            stalled_after: Duration::from_secs(60),
            oplog_window_fraction: 0.5,
            max_checkpoint_age: None,
            check_every: Duration::from_secs(10),
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

impl ConsumerHealth {
    pub(crate) fn healthy() -> Self {
        Self {
            status: HealthStatus::Healthy,
            reasons: Vec::new(),
        }
    }
}

/// Whether the handler side holds events it has not got through, and since when nothing moved
/// (tokio time, so tests pause it). Written by the consumer per batch and per event: two
/// atomics, no lock.
#[derive(Debug)]
pub(crate) struct Progress {
    base: Instant,
    last_nanos: AtomicU64,
    waiting: AtomicBool,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            last_nanos: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
        }
    }
}

impl Progress {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
    /// Events arrived: waiting starts now unless it already had.
    pub(crate) fn busy(&self) {
        if !self.waiting.swap(true, Ordering::Relaxed) {
            self.mark();
        }
    }
    /// An event got through.
    pub(crate) fn mark(&self) {
        self.last_nanos.store(self.now_nanos(), Ordering::Relaxed);
    }
    /// Everything read got through.
    pub(crate) fn idle(&self) {
        self.mark();
        self.waiting.store(false, Ordering::Relaxed);
    }
    /// How long events have waited without one getting through (`None`: nothing waits).
    pub(crate) fn stuck_for(&self) -> Option<Duration> {
        self.waiting.load(Ordering::Relaxed).then(|| {
            Duration::from_nanos(
                self.now_nanos()
                    .saturating_sub(self.last_nanos.load(Ordering::Relaxed)),
            )
        })
    }
}

/// What the judgement looks at.
#[derive(Clone, Debug)]
pub(crate) struct Observation<'a> {
    pub(crate) status: &'a ConsumerStatus,
    /// How long the status (by kind) has lasted.
    pub(crate) in_status: Duration,
    pub(crate) stuck_for: Option<Duration>,
    /// The cluster time the stored checkpoint points at.
    pub(crate) checkpoint: Option<Timestamp>,
    pub(crate) window: Option<OplogWindow>,
    /// Since this consumer last stored a checkpoint (`None`: it has not).
    pub(crate) since_commit: Option<Duration>,
}

/// A duration as a coarse bucket ("at least 5 min"): the reasons become the keel-health
/// component's detail, and an exact figure would change the sentence at every check, so a
/// dashboard or an alert on the detail would churn; a bucket changes a few times a day at most.
fn at_least(d: Duration) -> String {
    const STEPS: [(u64, &str); 9] = [
        (86_400, "1 day"),
        (21_600, "6 h"),
        (3_600, "1 h"),
        (900, "15 min"),
        (300, "5 min"),
        (60, "1 min"),
        (30, "30 s"),
        (10, "10 s"),
        (1, "1 s"),
    ];
    let s = d.as_secs();
    STEPS.iter().find(|(step, _)| s >= *step).map_or_else(
        || "under 1 s".to_owned(),
        |(_, label)| format!("at least {label}"),
    )
}

/// A share of the oplog window as a coarse bucket (see [`at_least`]).
fn at_least_percent(percent: f64) -> String {
    let bucket = [90, 75, 50, 25, 10]
        .into_iter()
        .find(|b| percent >= f64::from(*b))
        .unwrap_or(0);
    format!("at least {bucket} %")
}

/// Judges one observation.
pub(crate) fn evaluate(name: &str, o: &Observation<'_>, limits: HealthLimits) -> ConsumerHealth {
    let mut reasons = Vec::new();
    let mut worst = HealthStatus::Healthy;
    let mut degrade = |reason: String, reasons: &mut Vec<String>| {
        if worst == HealthStatus::Healthy {
            worst = HealthStatus::Degraded;
        }
        reasons.push(reason);
    };
    match o.status {
        ConsumerStatus::Stopped { error } => {
            reasons.push(match error {
                Some(error) => format!("consumer '{name}' stopped: {error}"),
                None => format!("consumer '{name}' is stopped"),
            });
            return ConsumerHealth {
                status: HealthStatus::Unhealthy,
                reasons,
            };
        }
        ConsumerStatus::WaitingForLease => return ConsumerHealth::healthy(),
        ConsumerStatus::Resuming { class, .. } if o.in_status >= limits.stalled_after => {
            degrade(
                format!(
                    "consumer '{name}' has been resuming for {} ({class} errors)",
                    at_least(o.in_status)
                ),
                &mut reasons,
            );
        }
        ConsumerStatus::Starting if o.in_status >= limits.stalled_after => degrade(
            format!(
                "consumer '{name}' has been starting for {} (loading its checkpoint or opening \
                 its stream)",
                at_least(o.in_status)
            ),
            &mut reasons,
        ),
        _ => {}
    }
    if let Some(stuck) = o.stuck_for
        && stuck >= limits.stalled_after
    {
        degrade(
            format!(
                "consumer '{name}' has made no progress for {}: its handler has not got an \
                 event through (failing, retrying or blocked)",
                at_least(stuck)
            ),
            &mut reasons,
        );
    }
    if let (Some(at), Some(window)) = (o.checkpoint, o.window) {
        let behind = window.behind(at);
        let length = window.length();
        if window.lost(at) {
            degrade(
                format!(
                    "consumer '{name}''s checkpoint is older than the oldest oplog entry: it can \
                     no longer resume from it (history lost)"
                ),
                &mut reasons,
            );
        } else if !length.is_zero()
            && behind.as_secs_f64() > limits.oplog_window_fraction * length.as_secs_f64()
        {
            let percent = 100.0 * behind.as_secs_f64() / length.as_secs_f64();
            degrade(
                format!(
                    "consumer '{name}''s checkpoint is {} of the oplog window behind the newest \
                     oplog entry (the window spans {}): it may fall off the oplog",
                    at_least_percent(percent),
                    at_least(length)
                ),
                &mut reasons,
            );
        }
    }
    if let (Some(limit), Some(age)) = (limits.max_checkpoint_age, o.since_commit)
        && age > limit
    {
        degrade(
            format!(
                "consumer '{name}' stored no checkpoint for {} (limit {})",
                at_least(age),
                at_least(limit)
            ),
            &mut reasons,
        );
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

    fn ts(time: u32) -> Timestamp {
        Timestamp { time, increment: 1 }
    }

    fn observe(status: &ConsumerStatus) -> Observation<'_> {
        Observation {
            status,
            in_status: S(0),
            stuck_for: None,
            checkpoint: None,
            window: None,
            since_commit: None,
        }
    }

    #[test]
    fn running_with_a_recent_checkpoint_is_healthy() {
        let o = Observation {
            checkpoint: Some(ts(150)),
            window: Some(OplogWindow {
                first: ts(100),
                last: ts(160),
            }),
            in_status: S(500),
            ..observe(&ConsumerStatus::Running)
        };
        let h = evaluate("c", &o, HealthLimits::default());
        assert_eq!(h.status, HealthStatus::Healthy, "{:?}", h.reasons);
        assert!(h.reasons.is_empty());
    }

    #[test]
    fn a_checkpoint_past_the_fraction_of_the_window_is_degraded() {
        let window = Some(OplogWindow {
            first: ts(1000),
            last: ts(4600),
        });
        let o = Observation {
            checkpoint: Some(ts(2080)),
            window,
            ..observe(&ConsumerStatus::Running)
        };
        let h = evaluate("orders", &o, HealthLimits::default());
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(
            h.reasons,
            [
                "consumer 'orders''s checkpoint is at least 50 % of the oplog window behind the \
                 newest oplog entry (the window spans at least 1 h): it may fall off the oplog"
            ]
        );
        // A stricter fraction, and a lost checkpoint.
        let limits = HealthLimits {
            oplog_window_fraction: 0.8,
            ..Default::default()
        };
        assert_eq!(evaluate("o", &o, limits).status, HealthStatus::Healthy);
        let lost = Observation {
            checkpoint: Some(ts(999)),
            ..o
        };
        assert!(evaluate("o", &lost, limits).reasons[0].contains("history lost"));
    }

    #[test]
    fn resuming_or_stuck_too_long_is_degraded_briefly_is_not() {
        let status = ConsumerStatus::Resuming {
            attempt: 4,
            class: "network",
        };
        let limits = HealthLimits::default();
        let brief = Observation {
            in_status: S(5),
            ..observe(&status)
        };
        assert_eq!(evaluate("c", &brief, limits).status, HealthStatus::Healthy);
        let long = Observation {
            in_status: S(61),
            ..observe(&status)
        };
        let h = evaluate("c", &long, limits);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(
            h.reasons[0].contains("resuming for at least 1 min"),
            "{:?}",
            h.reasons
        );
        let stuck = Observation {
            stuck_for: Some(S(300)),
            ..observe(&ConsumerStatus::Running)
        };
        let h = evaluate("c", &stuck, limits);
        assert!(
            h.reasons[0].contains("no progress for at least 5 min"),
            "{:?}",
            h.reasons
        );
    }

    #[test]
    fn a_stopped_consumer_is_unhealthy_and_a_standby_is_healthy() {
        let stopped = ConsumerStatus::Stopped {
            error: Some("history lost".into()),
        };
        let h = evaluate("c", &observe(&stopped), HealthLimits::default());
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert!(h.reasons[0].contains("history lost"));
        let standby = Observation {
            in_status: S(999),
            since_commit: Some(S(99_999)),
            ..observe(&ConsumerStatus::WaitingForLease)
        };
        let limits = HealthLimits {
            max_checkpoint_age: Some(S(10)),
            ..Default::default()
        };
        assert_eq!(
            evaluate("c", &standby, limits).status,
            HealthStatus::Healthy
        );
        let quiet = Observation {
            since_commit: Some(S(11)),
            ..observe(&ConsumerStatus::Running)
        };
        assert!(
            evaluate("c", &quiet, limits).reasons[0].contains("no checkpoint for at least 10 s")
        );
    }

    #[test]
    fn durations_and_shares_are_coarse_buckets() {
        assert_eq!(at_least(Duration::from_millis(500)), "under 1 s");
        assert_eq!(at_least(S(61)), "at least 1 min");
        assert_eq!(at_least(S(299)), "at least 1 min");
        assert_eq!(at_least(S(300)), "at least 5 min");
        assert_eq!(at_least(S(100_000)), "at least 1 day");
        assert_eq!(at_least_percent(67.4), "at least 50 %");
        assert_eq!(at_least_percent(91.0), "at least 90 %");
    }

    /// The reasons become keel-health's detail: checks a minute apart give the same sentence.
    #[test]
    fn the_reasons_do_not_change_from_one_check_to_the_next() {
        let window = Some(OplogWindow {
            first: ts(1000),
            last: ts(4600),
        });
        let at = |secs: u64, attempt: u32, checkpoint: u32, last: u32| {
            let status = ConsumerStatus::Resuming {
                attempt,
                class: "network",
            };
            let o = Observation {
                in_status: S(secs),
                stuck_for: Some(S(secs)),
                checkpoint: Some(ts(checkpoint)),
                window: window.map(|w| OplogWindow {
                    last: ts(last),
                    ..w
                }),
                since_commit: Some(S(secs)),
                ..observe(&status)
            };
            let limits = HealthLimits {
                max_checkpoint_age: Some(S(60)),
                ..Default::default()
            };
            evaluate("c", &o, limits).reasons
        };
        let first = at(400, 7, 2080, 4600);
        assert_eq!(first.len(), 4, "{first:?}");
        assert_eq!(first, at(460, 9, 2080, 4660), "a minute later");
        assert_ne!(first, at(1000, 9, 2080, 4660), "a bucket later");
    }

    #[tokio::test(start_paused = true)]
    async fn progress_counts_from_when_events_arrived_until_one_got_through() {
        let p = Progress::default();
        assert_eq!(p.stuck_for(), None);
        tokio::time::advance(S(100)).await;
        p.busy();
        tokio::time::advance(S(7)).await;
        p.busy();
        assert_eq!(p.stuck_for(), Some(S(7)));
        p.mark();
        tokio::time::advance(S(2)).await;
        assert_eq!(p.stuck_for(), Some(S(2)));
        p.idle();
        assert_eq!(p.stuck_for(), None);
    }
}
