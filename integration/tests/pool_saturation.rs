//! Pool saturation: more concurrent callers than the pool holds. The checkout wait limit and its
//! bounded queue decide who waits and who fails fast as overloaded; nothing deadlocks, and the
//! pool statistics and metrics show the saturation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keel_core::ErrorClass;
use keel_integration::{Deployment, PATIENCE, test_config};
use keel_testkit::FailCommand;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use mongodb::bson::{Document, doc};
use mongokeel::Keel;

const POOL: u32 = 2;
const QUEUE: u32 = 3;
const CALLERS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_queues_then_sheds_load_without_deadlock() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let deployment = Deployment::start().await;
    let Some(server) = deployment.testkit("block connections with a fail point on every find")
    else {
        return;
    };
    let mut config = test_config(&deployment.uri());
    config.set("pool.max_size", &POOL.to_string()).unwrap();
    config.set("pool.max_waiting", &QUEUE.to_string()).unwrap();
    config.set("timeouts.checkout_wait", "300ms").unwrap();
    config.validate().unwrap();
    let keel = Keel::builder(config)
        .without_retry()
        .without_breaker()
        .build()
        .await
        .unwrap();
    let items = keel.collection::<Document>(&deployment.database("saturation"), "items");
    items.insert_one(doc! { "_id": 1 }).await.unwrap();
    server
        .fail_command(FailCommand::new(["find"]).block_connection(Duration::from_millis(1500)))
        .unwrap();

    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let items = items.clone();
            tokio::spawn(async move { items.find_one(doc! { "_id": 1 }).await })
        })
        .collect();
    tokio::time::timeout(PATIENCE, async {
        while keel.client().pool_stats().in_use < u64::from(POOL) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the pool fills up");
    let outcomes = tokio::time::timeout(PATIENCE, futures_util::future::join_all(callers))
        .await
        .expect("no caller is left hanging");

    let (mut served, mut overloaded) = (0, 0);
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(found) => {
                assert!(found.is_some());
                served += 1;
            }
            Err(err) => {
                assert_eq!(err.class(), ErrorClass::Overloaded, "{err}");
                assert!(err.retry_after().is_some() || err.user_message().len() > 1);
                overloaded += 1;
            }
        }
    }
    assert_eq!(
        served, POOL as usize,
        "the pool's connections serve callers"
    );
    assert_eq!(overloaded, CALLERS - POOL as usize, "the rest fail fast");
    assert!(
        keel.client().pool_stats().open <= u64::from(POOL),
        "never more connections than the pool allows"
    );

    let rejections: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "keel_pool_checkout_limit_rejections_total")
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => key
                .key()
                .labels()
                .find(|l| l.key() == "reason")
                .map(|l| (l.value().to_owned(), n)),
            _ => None,
        })
        .collect();
    let count = |reason: &str| {
        rejections
            .iter()
            .filter(|(r, _)| r == reason)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    assert_eq!(
        count("queue_full"),
        (CALLERS - (POOL + QUEUE) as usize) as u64
    );
    assert_eq!(count("wait_exceeded"), u64::from(QUEUE));
    server.clear_fail_points();
}
