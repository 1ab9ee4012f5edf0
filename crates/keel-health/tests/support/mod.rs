//! A scripted `HealthTarget` for paused-time tests: pings succeed, fail or hang as told, and the
//! connection state, pool numbers and resets are under the test's control.

#![allow(dead_code, unreachable_pub)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
use keel_core::Error;
use keel_health::{AlertEvent, HealthHandle, HealthReport, HealthTarget};
use keel_pool_core::{ConnectionState, PoolStats, ResetRefused};
use tokio::sync::{mpsc, watch};

/// How the next pings behave.
#[derive(Clone, Copy, Debug)]
pub enum Ping {
    /// Succeed after this long.
    Ok(Duration),
    /// Fail after 1 ms with a server-selection error.
    Fail,
    /// Never answer (the monitor's timeout cuts it).
    Hang,
}

#[derive(Clone)]
pub struct Fake {
    inner: Arc<Inner>,
}

struct Inner {
    ping: Mutex<Ping>,
    state: watch::Sender<ConnectionState>,
    pool: Mutex<PoolStats>,
    resets: AtomicU32,
    refuse_resets: AtomicBool,
}

impl Fake {
    pub fn new() -> Self {
        let (state, _) = watch::channel(ConnectionState::Connected);
        Self {
            inner: Arc::new(Inner {
                ping: Mutex::new(Ping::Ok(Duration::from_millis(10))),
                state,
                pool: Mutex::new(PoolStats::default()),
                resets: AtomicU32::new(0),
                refuse_resets: AtomicBool::new(false),
            }),
        }
    }

    pub fn set_ping(&self, ping: Ping) {
        *self.inner.ping.lock().unwrap() = ping;
    }

    pub fn set_state(&self, state: ConnectionState) {
        self.inner.state.send_replace(state);
    }

    pub fn set_in_use(&self, in_use: u64) {
        let mut pool = self.inner.pool.lock().unwrap();
        pool.in_use = in_use;
        pool.open = pool.open.max(in_use);
    }

    /// A successful driver checkout: progress, as far as recovery is concerned.
    pub fn checkout(&self) {
        self.inner.pool.lock().unwrap().checkouts += 1;
    }

    pub fn resets(&self) -> u32 {
        self.inner.resets.load(Ordering::SeqCst)
    }

    pub fn refuse_resets(&self, refuse: bool) {
        self.inner.refuse_resets.store(refuse, Ordering::SeqCst);
    }
}

impl HealthTarget for Fake {
    fn ping(&self) -> BoxFuture<'static, Result<(), Error>> {
        let ping = *self.inner.ping.lock().unwrap();
        Box::pin(async move {
            match ping {
                Ping::Ok(latency) => {
                    tokio::time::sleep(latency).await;
                    Ok(())
                }
                Ping::Fail => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Err(Error::unreachable(Duration::from_millis(1)))
                }
                Ping::Hang => std::future::pending().await,
            }
        })
    }

    fn connection(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.subscribe()
    }

    fn pool_stats(&self) -> PoolStats {
        *self.inner.pool.lock().unwrap()
    }

    fn reset(&self) -> Result<(), ResetRefused> {
        if self.inner.refuse_resets.load(Ordering::SeqCst) {
            return Err(ResetRefused::ShuttingDown);
        }
        self.inner.resets.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Generous under paused time: time only advances when everything is idle.
pub const PATIENCE: Duration = Duration::from_secs(3600);

/// Waits until the report satisfies `wanted`; panics with the last report otherwise.
pub async fn until(health: &HealthHandle, wanted: impl Fn(&HealthReport) -> bool) -> HealthReport {
    let mut reports = health.subscribe();
    match tokio::time::timeout(PATIENCE, reports.wait_for(|r| wanted(r))).await {
        Ok(Ok(report)) => report.clone(),
        _ => panic!("condition never held; last report: {:?}", health.report()),
    }
}

/// The next alert a `ChannelSink` delivered; panics when none comes.
pub async fn next_alert(alerts: &mut mpsc::Receiver<AlertEvent>) -> AlertEvent {
    tokio::time::timeout(PATIENCE, alerts.recv())
        .await
        .expect("no alert came")
        .expect("alert channel closed")
}
