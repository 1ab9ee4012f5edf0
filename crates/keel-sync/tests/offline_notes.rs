//! Runs the `offline_notes` example's app against keel-testkit and checks the server: every note
//! acknowledged locally, including those written during the outage, is there exactly once, with
//! each acknowledged edit applied once.
//!
//! Against keel-testkit only: the app stops and restarts its server, which a real MongoDB given
//! by `KEEL_TEST_URI` cannot be asked to do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../examples/offline_notes/notes.rs"]
mod notes;

use std::collections::BTreeMap;

use futures_util::TryStreamExt as _;
use mongodb::bson::{Document, doc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_notes_reach_the_server_exactly_once() {
    let Some(server) = support::testkit("stops and restarts its server").await else {
        return;
    };
    let mut printed = Vec::new();
    let session = notes::run(&server, &support::store_path("offline_notes"), 5, |line| {
        printed.push(line.to_owned());
    })
    .await
    .unwrap();
    assert_eq!(session.notes.len(), 7);
    assert!(printed[1].contains("offline"), "{printed:?}");
    assert!(
        printed[2].starts_with(" offline: offline | pending 15"),
        "five notes written twice edited while offline: {printed:?}"
    );
    assert!(printed[3].contains("online | pending 0"), "{printed:?}");

    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let on_server: Vec<Document> = raw
        .database(notes::DB)
        .collection::<Document>(notes::COLLECTION)
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    // One document per note, none missing, none extra.
    let mut by_id = BTreeMap::new();
    for note in &on_server {
        let id = note.get_i32("_id").unwrap();
        assert!(by_id.insert(id, note.get_i32("edits").unwrap()).is_none());
    }
    let acknowledged: BTreeMap<i32, i32> = session.notes.iter().copied().collect();
    assert_eq!(
        by_id, acknowledged,
        "each acknowledged edit applied exactly once"
    );
}
