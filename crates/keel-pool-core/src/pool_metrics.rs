//! Pool metrics from the driver's CMAP events: the driver pools connections but publishes no
//! numbers, so Keel counts them as the events go by.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use metrics::{Key, Level, Metadata};
use mongodb::event::cmap::{CmapEvent, ConnectionCheckoutFailedReason, ConnectionClosedReason};

// The keys of the metrics published on every checkout and check-in, built (and hashed) at
// compile time: the macros would build them per event.
static IN_USE_KEY: Key = Key::from_static_name(names::IN_USE);
static IDLE_KEY: Key = Key::from_static_name(names::IDLE);
static CHECKOUT_WAIT_KEY: Key = Key::from_static_name(names::CHECKOUT_WAIT);
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A snapshot of the pool, summed over every server's pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (established or being established).
    pub open: u64,
    /// Connections checked out by an operation.
    pub in_use: u64,
    /// Connections open and idle in the pool.
    pub idle: u64,
    /// Successful checkouts since start.
    pub checkouts: u64,
    /// Checkouts that failed because no connection became available in time.
    pub checkouts_failed_timeout: u64,
    /// Checkouts that failed because a new connection could not be established.
    pub checkouts_failed_connection_error: u64,
    /// Times a pool was cleared.
    pub pool_cleared: u64,
    /// The wait of the last checkout, in microseconds.
    pub last_checkout_wait_micros: u64,
}

/// Counts CMAP events into atomics (read by [`PoolMetrics::snapshot`]) and `metrics`.
#[derive(Debug, Default)]
pub struct PoolMetrics {
    open: AtomicU64,
    in_use: AtomicU64,
    checkouts: AtomicU64,
    failed_timeout: AtomicU64,
    failed_connection: AtomicU64,
    cleared: AtomicU64,
    last_wait_micros: AtomicU64,
    /// Creation instants, for the lifetime histogram. Connections open and close rarely
    /// compared with checkouts, so a lock here stays off the hot path.
    created: Mutex<HashMap<(String, u32), Instant>>,
}

/// Metric names, documented in the crate README.
pub mod names {
    /// Gauge: connections open, over all servers.
    pub const OPEN: &str = "keel_pool_connections_open";
    /// Gauge: connections checked out.
    pub const IN_USE: &str = "keel_pool_connections_in_use";
    /// Gauge: connections idle in the pool.
    pub const IDLE: &str = "keel_pool_connections_idle";
    /// Histogram (seconds): time to check a connection out, successful or not.
    pub const CHECKOUT_WAIT: &str = "keel_pool_checkout_wait_seconds";
    /// Counter `{reason}`: failed checkouts (`timeout`, `connection_error`).
    pub const CHECKOUTS_FAILED: &str = "keel_pool_checkouts_failed_total";
    /// Counter: pools cleared.
    pub const CLEARED: &str = "keel_pool_cleared_total";
    /// Histogram (seconds): how long connections lived, recorded when they close.
    pub const LIFETIME: &str = "keel_pool_connection_lifetime_seconds";
    /// Counter `{reason}`: connections closed (`stale`, `idle`, `error`, `dropped`, `pool_closed`).
    pub const CLOSED: &str = "keel_pool_connections_closed_total";
}

fn decrement(counter: &AtomicU64) {
    // Saturating: an event order the driver does not promise must not wrap the gauge.
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(1))
    });
}

impl PoolMetrics {
    /// Records one CMAP event.
    pub fn record(&self, event: &CmapEvent) {
        match event {
            CmapEvent::ConnectionCreated(created) => {
                self.open.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut map) = self.created.lock() {
                    map.insert(
                        (created.address.to_string(), created.connection_id),
                        Instant::now(),
                    );
                }
            }
            CmapEvent::ConnectionClosed(closed) => {
                decrement(&self.open);
                let key = (closed.address.to_string(), closed.connection_id);
                if let Some(born) = self
                    .created
                    .lock()
                    .ok()
                    .and_then(|mut map| map.remove(&key))
                {
                    metrics::histogram!(names::LIFETIME).record(born.elapsed().as_secs_f64());
                }
                metrics::counter!(names::CLOSED, "reason" => closed_reason(&closed.reason))
                    .increment(1);
            }
            // The hot path (twice per operation): the open count does not change.
            CmapEvent::ConnectionCheckedOut(out) => {
                self.in_use.fetch_add(1, Ordering::Relaxed);
                self.checkouts.fetch_add(1, Ordering::Relaxed);
                self.record_wait(out.duration);
                self.publish_use();
                return;
            }
            CmapEvent::ConnectionCheckedIn(_) => {
                decrement(&self.in_use);
                self.publish_use();
                return;
            }
            CmapEvent::ConnectionCheckoutFailed(failed) => {
                let reason = match failed.reason {
                    ConnectionCheckoutFailedReason::Timeout => {
                        self.failed_timeout.fetch_add(1, Ordering::Relaxed);
                        "timeout"
                    }
                    _ => {
                        self.failed_connection.fetch_add(1, Ordering::Relaxed);
                        "connection_error"
                    }
                };
                metrics::counter!(names::CHECKOUTS_FAILED, "reason" => reason).increment(1);
                self.record_wait(failed.duration);
            }
            CmapEvent::PoolCleared(_) => {
                self.cleared.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(names::CLEARED).increment(1);
            }
            _ => return,
        }
        self.publish_gauges();
    }

    fn record_wait(&self, wait: Duration) {
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.last_wait_micros.store(micros, Ordering::Relaxed);
        metrics::with_recorder(|recorder| {
            recorder
                .register_histogram(&CHECKOUT_WAIT_KEY, &METADATA)
                .record(wait.as_secs_f64());
        });
    }

    fn publish_gauges(&self) {
        let open = self.open.load(Ordering::Relaxed);
        // Gauges take f64; pool sizes are far below 2^53, so the conversion is exact.
        metrics::gauge!(names::OPEN).set(open as f64);
        self.publish_use();
    }

    fn publish_use(&self) {
        let stats = self.snapshot();
        metrics::with_recorder(|recorder| {
            recorder
                .register_gauge(&IN_USE_KEY, &METADATA)
                .set(stats.in_use as f64);
            recorder
                .register_gauge(&IDLE_KEY, &METADATA)
                .set(stats.idle as f64);
        });
    }

    /// The current numbers.
    pub fn snapshot(&self) -> PoolStats {
        let open = self.open.load(Ordering::Relaxed);
        let in_use = self.in_use.load(Ordering::Relaxed);
        PoolStats {
            open,
            in_use,
            idle: open.saturating_sub(in_use),
            checkouts: self.checkouts.load(Ordering::Relaxed),
            checkouts_failed_timeout: self.failed_timeout.load(Ordering::Relaxed),
            checkouts_failed_connection_error: self.failed_connection.load(Ordering::Relaxed),
            pool_cleared: self.cleared.load(Ordering::Relaxed),
            last_checkout_wait_micros: self.last_wait_micros.load(Ordering::Relaxed),
        }
    }
}

fn closed_reason(reason: &ConnectionClosedReason) -> &'static str {
    match reason {
        ConnectionClosedReason::Stale => "stale",
        ConnectionClosedReason::Idle => "idle",
        ConnectionClosedReason::Error => "error",
        ConnectionClosedReason::Dropped => "dropped",
        ConnectionClosedReason::PoolClosed => "pool_closed",
        _ => "other",
    }
}
