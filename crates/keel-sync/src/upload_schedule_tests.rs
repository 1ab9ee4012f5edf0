//! The round schedule with paused time: failed rounds are spaced by the client's keel-retry
//! backoff and run again by themselves (no local write, no reconnect), and a successful round
//! ends the retries. (The client's own background task runs beside the one under test; it is
//! offline, so it never runs a round.)

#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{FutureExt as _, future::BoxFuture};
use keel_pool_core::ConnectionState;
use keel_retry::{BackoffConfig, Jitter};
use tokio::time::Instant;

use super::{Rounds, schedule};
use crate::{Store, SyncClient, client::Inner, round_error::RoundError};

/// Fails its first `failures` rounds (as an unreachable server would), then succeeds; records
/// when each round started.
struct Flaky {
    failures: usize,
    started: Arc<Mutex<Vec<Instant>>>,
}

impl Rounds for Flaky {
    fn round<'a>(&'a mut self, _inner: &'a Arc<Inner>) -> BoxFuture<'a, Result<(), RoundError>> {
        let mut started = self.started.lock().unwrap();
        started.push(Instant::now());
        let fail = started.len() <= self.failures;
        async move {
            if fail {
                Err(RoundError::Server(keel_core::Error::overloaded(
                    "the test server sheds load".to_owned(),
                    None,
                )))
            } else {
                Ok(())
            }
        }
        .boxed()
    }

    fn polls(&self, _inner: &Inner) -> bool {
        false
    }
}

async fn offline_client() -> SyncClient {
    let mut config = keel_config::KeelConfig::development("mongodb://127.0.0.1:9/").unwrap();
    config.set("lazy_connect", "true").unwrap();
    config.validate().unwrap();
    let keel = mongokeel::Keel::builder(config).build().await.unwrap();
    let dir = std::env::temp_dir().join(format!(
        "keel-sync-schedule-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    SyncClient::builder(keel, Store::open(dir.join("schedule.redb")).unwrap())
        .backoff(BackoffConfig {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
            multiplier: 2.0,
            jitter: Jitter::None,
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn failed_rounds_are_retried_by_themselves_after_the_backoff() {
    let client = offline_client().await;
    let (_connected, connection) = tokio::sync::watch::channel(ConnectionState::Connected);
    let started = Arc::new(Mutex::new(Vec::new()));
    let mut rounds = Flaky {
        failures: 5,
        started: started.clone(),
    };
    let inner = Arc::downgrade(&client.inner);
    let task = tokio::spawn(async move { schedule(inner, connection, &mut rounds).await });
    // Nothing wakes the schedule from outside: no write, no reconnect, no poll.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let started = started.lock().unwrap().clone();
    let gaps: Vec<Duration> = started.windows(2).map(|w| w[1] - w[0]).collect();
    // Five failures, then the round that succeeds, then nothing more: base 1 s doubling,
    // capped at 8 s.
    assert_eq!(
        gaps,
        [1, 2, 4, 8, 8].map(Duration::from_secs).to_vec(),
        "rounds started at {started:?}"
    );
    drop(client);
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .unwrap()
        .unwrap();
}
