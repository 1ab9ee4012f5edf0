//! The sampler: once per resolution step, reads health, pool and operation numbers into a
//! [`Sample`], keeps it in the history and publishes the update the event stream sends.

use std::{
    sync::{Arc, PoisonError, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use keel_breaker::BreakerState;
use serde_json::{Map, Value, json};
use tokio::time::{Instant, MissedTickBehavior};

use crate::{
    AlertEvent, OperationStats,
    dashboard::{Sample, Shared},
    metrics::OperationSnapshot,
    status::millis,
};

/// Operation latency percentiles cover this much of the recent past.
const LATENCY_WINDOW: Duration = Duration::from_secs(60);

/// Operation totals at the previous sample, for rates.
struct Previous {
    at: Instant,
    ops: OperationSnapshot,
}

pub(crate) async fn run(shared: Weak<Shared>) {
    let Some(resolution) = shared.upgrade().map(|s| s.config.resolution) else {
        return;
    };
    let mut ticks = tokio::time::interval(resolution.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut previous: Option<Previous> = None;
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (sample, now) = take_sample(&shared, previous.as_ref());
        previous = Some(now);
        shared
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sample);
        let update = snapshot(&shared, false).to_string();
        shared.latest.send_replace(Arc::from(update));
    }
}

fn ops_of(stats: Option<&OperationStats>) -> OperationSnapshot {
    stats.map(OperationStats::snapshot).unwrap_or_default()
}

fn take_sample(shared: &Shared, previous: Option<&Previous>) -> (Sample, Previous) {
    let health = &shared.health;
    let report = health.report();
    let pool = health.pool_stats();
    let stats = health.operations();
    let ops = ops_of(stats);
    let now = Instant::now();
    let (ops_rate, error_rate) = match previous {
        Some(prev) => {
            let secs = now.saturating_duration_since(prev.at).as_secs_f64();
            if secs > 0.0 {
                // Counts far below 2^53: exact as f64.
                (
                    ops.total.saturating_sub(prev.ops.total) as f64 / secs,
                    ops.errors.saturating_sub(prev.ops.errors) as f64 / secs,
                )
            } else {
                (0.0, 0.0)
            }
        }
        None => (0.0, 0.0),
    };
    let latency = stats.and_then(|s| s.latency(LATENCY_WINDOW));
    let sample = Sample {
        t: unix_millis(SystemTime::now()),
        status: report.status.as_str(),
        connection: health.connection().as_str(),
        breaker: health.breaker().map(BreakerState::as_str),
        pool_in_use: pool.in_use,
        pool_open: pool.open,
        pool_max: health.pool_max_size(),
        ops_rate,
        error_rate,
        p50_ms: latency.map(|l| millis(l.p50)),
        p90_ms: latency.map(|l| millis(l.p90)),
        p99_ms: latency.map(|l| millis(l.p99)),
        ping_ms: report.last_check.map(|c| millis(c.latency)),
    };
    (sample, Previous { at: now, ops })
}

fn unix_millis(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn alert_json(event: &AlertEvent) -> Value {
    event.to_json()
}

/// The JSON the page renders: the latest sample, the health report, alerts, operations by
/// error class, and (for the first load) the history.
pub(crate) fn snapshot(shared: &Shared, with_history: bool) -> Value {
    let health = &shared.health;
    let (latest, history) = {
        let history = shared
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let latest = history.samples().last().cloned();
        let all: Option<Vec<Sample>> = with_history.then(|| history.samples().cloned().collect());
        (latest, all)
    };
    let latest = latest.unwrap_or_else(|| take_sample(shared, None).0);
    let ops = ops_of(health.operations());
    let by_class: Map<String, Value> = ops
        .errors_by_class
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(class, n)| (class.as_str().to_owned(), json!(n)))
        .collect();
    let mut value = json!({
        "now": latest,
        "health": health.report().to_json(),
        "alerts": {
            "active": health.active_alerts().iter().map(alert_json).collect::<Vec<_>>(),
            "recent": health.recent_alerts().iter().map(alert_json).collect::<Vec<_>>(),
        },
        "operations": {
            "total": ops.total,
            "errors": ops.errors,
            "errors_by_class": by_class,
        },
        "resolution_ms": millis(shared.config.resolution),
    });
    if let Some(history) = history {
        value["history"] = json!(history);
    }
    value
}
