//! The offline notes app of `examples/offline_notes.rs`: it writes notes and edits before, during
//! and after an outage of its server, and reports what was acknowledged locally. The example
//! prints it; `tests/offline_notes.rs` checks the server got every acknowledged write once.

use std::{error::Error, path::Path, time::Duration};

use keel_config::KeelConfig;
use keel_sync::{Changes, Connectivity, Store, SyncClient, SyncStatus};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use tokio::sync::watch;

/// Where the notes live on the server.
pub(crate) const DB: &str = "notes_app";
/// The notes collection.
pub(crate) const COLLECTION: &str = "notes";

/// How long the app waits for a status before giving up (bounds a hang; nothing is timed).
const PATIENCE: Duration = Duration::from_secs(30);

/// What the app did: every note it wrote (acknowledged: durable on local disk) and how many
/// `edits` increments each got.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// `(note id, acknowledged edits)` of every note, in the order written.
    pub(crate) notes: Vec<(i32, i32)>,
}

/// A Keel that notices an outage within a second or two (the defaults are meant for
/// production and wait longer).
fn config(uri: &str) -> Result<KeelConfig, Box<dyn Error>> {
    let mut config = KeelConfig::development(uri)?;
    for (path, value) in [
        ("heartbeat", "500ms"),
        ("timeouts.connect", "1s"),
        ("timeouts.server_selection", "1s"),
        ("timeouts.attempt", "2s"),
        ("timeouts.checkout_wait", "1s"),
        ("timeouts.deadline", "6s"),
    ] {
        config.set(path, value)?;
    }
    config.validate()?;
    Ok(config)
}

/// Waits until the status satisfies `ready`.
async fn status_until(
    status: &mut watch::Receiver<SyncStatus>,
    what: &str,
    ready: impl FnMut(&SyncStatus) -> bool,
) -> Result<String, Box<dyn Error>> {
    let line = tokio::time::timeout(PATIENCE, status.wait_for(ready))
        .await
        .map_err(|_| format!("the notes app waited {PATIENCE:?} for {what}"))??
        .to_string();
    Ok(line)
}

/// Runs the app against `server` with its local store at `store`: two notes online, then
/// `offline_notes` notes (each edited twice) while the server is stopped, then the server
/// returns and the queue drains. `print` gets each status line as it happens.
pub(crate) async fn run(
    server: &TestServer,
    store: &Path,
    offline_notes: i32,
    mut print: impl FnMut(&str),
) -> Result<Session, Box<dyn Error>> {
    let keel = mongokeel::Keel::builder(config(&server.uri())?)
        .build()
        .await?;
    let client = SyncClient::builder(keel, Store::open(store)?).build()?;
    let notes = client
        .collection::<Document>(DB, COLLECTION)
        .subscribe(doc! {});
    let mut status = client.status();
    let mut session = Session::default();
    let mut report = |phase: &str, line: String| print(&format!("{phase:>8}: {line}"));

    for id in 0..2 {
        notes
            .insert(doc! { "_id": id, "text": format!("note {id}"), "edits": 0 })
            .await?;
        session.notes.push((id, 0));
    }
    let line = status_until(&mut status, "the first notes to upload", |s| {
        s.connectivity == Connectivity::Online && s.pending == 0
    })
    .await?;
    report("online", line);

    server.stop().await;
    let line = status_until(&mut status, "the app to notice the outage", |s| {
        s.connectivity == Connectivity::Offline
    })
    .await?;
    report("outage", line);
    for id in 2..2 + offline_notes {
        // Every write returns once it is on local disk: the app keeps working.
        notes
            .insert(doc! { "_id": id, "text": format!("note {id}"), "edits": 0 })
            .await?;
        for _ in 0..2 {
            notes
                .update(id, Changes::new().inc("edits", 1).set("done", false))
                .await?;
        }
        session.notes.push((id, 2));
    }
    // The local view shows the offline writes at once.
    let local = notes.find(|_| true)?.len();
    let line = status.borrow().to_string();
    report("offline", format!("{line} | {local} notes on this device"));

    server.restart().await?;
    let line = status_until(&mut status, "the queue to drain", |s| {
        s.connectivity == Connectivity::Online && s.pending == 0
    })
    .await?;
    report("synced", line);
    Ok(session)
}
