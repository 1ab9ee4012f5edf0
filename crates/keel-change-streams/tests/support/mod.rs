//! Shared setup for the consumer tests: a one-member replica set, a Keel on it, a recording
//! handler, and waits with timeouts (never sleeps).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn replica_set(oplog: usize) -> TestServer {
    TestServer::builder()
        .replica_set("rs0", 1)
        .oplog_size(oplog)
        .start()
        .await
        .unwrap()
}

pub fn config(uri: &str) -> keel_config::KeelConfig {
    let mut config = keel_config::KeelConfig::development(uri).unwrap();
    for (path, value) in [
        ("heartbeat", "500ms"),
        ("timeouts.connect", "1s"),
        ("timeouts.server_selection", "1s"),
        ("timeouts.attempt", "3s"),
        ("timeouts.checkout_wait", "1s"),
        ("timeouts.deadline", "6s"),
        ("retry.initial_backoff", "20ms"),
        ("retry.max_backoff", "200ms"),
        ("breaker.open_wait", "500ms"),
    ] {
        config.set(path, value).unwrap();
    }
    config.validate().unwrap();
    config
}

pub async fn keel(uri: &str) -> Keel {
    Keel::builder(config(uri)).build().await.unwrap()
}

/// The `_id`s of the inserted documents a handler saw, in order, with their event ids.
#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<(i32, Document)>>>);

impl Seen {
    pub fn push(&self, id: i32, event_id: Document) {
        self.0.lock().unwrap().push((id, event_id));
    }
    pub fn ids(&self) -> Vec<i32> {
        self.0.lock().unwrap().iter().map(|(i, _)| *i).collect()
    }
    pub async fn wait_for(&self, what: &str, f: impl Fn(&[i32]) -> bool) {
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                if f(&self.ids()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out waiting for {what}; seen {:?}",
            self.ids()
        );
    }
}

pub async fn insert(keel: &Keel, range: std::ops::Range<i32>) {
    let orders = keel.collection::<Document>("app", "orders");
    for i in range {
        orders.insert_one(doc! {"_id": i, "n": i}).await.unwrap();
    }
}

/// Every id in `0..n` seen at least once.
pub fn all_seen(ids: &[i32], n: i32) -> bool {
    (0..n).all(|i| ids.contains(&i))
}

/// Seen ids are in server order (each first sighting after the previous one's).
pub fn first_sightings_in_order(ids: &[i32]) -> bool {
    let mut firsts = Vec::new();
    for id in ids {
        if !firsts.contains(id) {
            firsts.push(*id);
        }
    }
    firsts.windows(2).all(|w| w[0] < w[1])
}
