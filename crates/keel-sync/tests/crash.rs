//! Crash safety, proved with SIGKILL: a child process (this test binary again) writes in a loop
//! from several tasks and prints each acknowledged op id; it is killed at random points. Every
//! acknowledged write must be in the queue after reopening, and after upload to a keel-testkit
//! server every queued operation must be applied exactly once.
//!
//! `KEEL_SYNC_CRASH_TRIALS` sets the number of kills (default 100).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader, Write as _},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_sync::{Changes, OperationKind, Store, SyncClient};
use mongodb::bson::{Bson, Document, doc};

const CHILD_VAR: &str = "KEEL_SYNC_CRASH_CHILD";
/// The database the children write to: the parent's own (tests may share a real server).
const DB_VAR: &str = "KEEL_SYNC_CRASH_DB";
const WRITERS: i32 = 4;

/// The child: offline (nothing listens on its port), so every write stays queued.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_VAR) else {
        return;
    };
    let db = std::env::var(DB_VAR).unwrap();
    support::runtime().block_on(async move {
        let keel = support::lazy_keel(support::NOWHERE).await;
        let client = SyncClient::builder(keel, Store::open(&path).unwrap())
            .build()
            .unwrap();
        let notes = client
            .collection::<Document>(&db, "counters")
            .subscribe(doc! {});
        let stdout = Arc::new(Mutex::new(std::io::stdout()));
        {
            let mut out = stdout.lock().unwrap();
            writeln!(out, "\nready").unwrap();
            out.flush().unwrap();
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|k| {
                let notes = notes.clone();
                let stdout = stdout.clone();
                tokio::spawn(async move {
                    if notes.get(k).unwrap().is_none() {
                        let id = notes.insert(doc! { "_id": k, "n": 0 }).await.unwrap();
                        let mut out = stdout.lock().unwrap();
                        writeln!(out, "\nack {id}").unwrap();
                        out.flush().unwrap();
                    }
                    loop {
                        let id = notes.update(k, Changes::new().inc("n", 1)).await.unwrap();
                        let mut out = stdout.lock().unwrap();
                        writeln!(out, "\nack {id}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            let _ = writer.await;
        }
    });
}

/// Runs the child until a random moment, SIGKILLs it, and returns the op ids it acknowledged.
fn one_trial(path: &std::path::Path, db: &str, rng: &mut impl rand::Rng) -> HashSet<uuid::Uuid> {
    kill_child_at_random(
        "crash_child",
        &[
            (CHILD_VAR, path.as_os_str()),
            (DB_VAR, std::ffi::OsStr::new(db)),
        ],
        40_000,
        rng,
    )
}

/// Whether this process is one of the children (then the parents' tests do nothing).
fn in_child() -> bool {
    std::env::var(CHILD_VAR).is_ok() || std::env::var(CONFLICT_CHILD_VAR).is_ok()
}

/// Runs the test `child` of this binary with `env`, waits for its `ready` line, SIGKILLs it
/// after a random delay of up to `max_micros`, and returns the op ids it printed as `ack`.
fn kill_child_at_random(
    child: &str,
    env: &[(&str, &std::ffi::OsStr)],
    max_micros: u64,
    rng: &mut impl rand::Rng,
) -> HashSet<uuid::Uuid> {
    let delay = Duration::from_micros(rng.random_range(0..max_micros));
    kill_child_when(child, env, || std::thread::sleep(delay))
}

/// Runs the test `child` of this binary with `env`, waits for its `ready` line and for `when`
/// to return, SIGKILLs it, and returns the op ids it printed as `ack`.
fn kill_child_when(
    child: &str,
    env: &[(&str, &std::ffi::OsStr)],
    when: impl FnOnce(),
) -> HashSet<uuid::Uuid> {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", child, "--nocapture", "--test-threads=1"]);
    for (var, value) in env {
        command.env(var, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = HashSet::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                let _ = ready_tx.send(());
            } else if let Some(id) = line.strip_prefix("ack ")
                && let Ok(id) = uuid::Uuid::parse_str(id.trim())
            {
                acked.insert(id);
            }
        }
        acked
    });
    // Wait for the child to be writing (or to have died: then the trial proves nothing new).
    let _ = ready_rx.recv_timeout(Duration::from_secs(20));
    when();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn acknowledged_writes_survive_sigkill_and_upload_exactly_once() {
    if in_child() {
        return;
    }
    let trials = support::count_from_env("KEEL_SYNC_CRASH_TRIALS", 100);
    let path = support::store_path("crash");
    let db = support::database("crash");
    let mut rng = rand::rng();
    let mut all_acked = 0_usize;
    for trial in 0..trials {
        let acked = one_trial(&path, &db, &mut rng);
        all_acked += acked.len();
        let store = Store::open(&path).unwrap();
        let queued: HashSet<uuid::Uuid> =
            store.pending().unwrap().iter().map(|op| op.op_id).collect();
        let lost: Vec<_> = acked.difference(&queued).collect();
        assert!(
            lost.is_empty(),
            "trial {trial}: {} acknowledged writes are not in the queue after SIGKILL: {lost:?}",
            lost.len()
        );
    }
    eprintln!("{trials} SIGKILL trials, {all_acked} acknowledged writes, none lost");

    // Upload the whole queue; every queued update must count exactly once on the server.
    let store = Store::open(&path).unwrap();
    let queue = store.pending().unwrap();
    let mut expected: HashMap<i32, i32> = HashMap::new();
    for op in &queue {
        let Bson::Int32(k) = op.doc_id else {
            panic!("unexpected id {}", op.doc_id)
        };
        if matches!(op.kind, OperationKind::Update(_)) {
            *expected.entry(k).or_default() += 1;
        }
    }
    support::runtime().block_on(async move {
        let server = support::server().await;
        let keel = support::keel(&server.uri).await;
        let client = SyncClient::builder(keel, store).build().unwrap();
        let _notes = client
            .collection::<Document>(&db, "counters")
            .subscribe(doc! {});
        support::eventually("the queue drains", || client.status().borrow().pending == 0).await;
        let counters = server
            .raw()
            .await
            .database(&db)
            .collection::<Document>("counters");
        for (k, n) in expected {
            let found = counters.find_one(doc! { "_id": k }).await.unwrap().unwrap();
            assert_eq!(found.get_i32("n").unwrap(), n, "document {k}: {found}");
        }
        assert!(client.quarantined().is_empty());
    });
}

const CONFLICT_CHILD_VAR: &str = "KEEL_SYNC_CONFLICT_CRASH_CHILD";
const URI_VAR: &str = "KEEL_SYNC_CRASH_SERVER";
const CONFLICT_DOCS: i32 = 20;

/// The second child: online, it uploads a queue of updates that all conflict with the server
/// (each document was changed there after the update was queued) and is killed while at it.
#[test]
fn conflict_crash_child() {
    let Ok(path) = std::env::var(CONFLICT_CHILD_VAR) else {
        return;
    };
    let uri = std::env::var(URI_VAR).unwrap();
    let db = std::env::var(DB_VAR).unwrap();
    support::runtime().block_on(async move {
        let client = conflict_client(&uri, Store::open(&path).unwrap()).await;
        let _notes = conflict_collection(&client, &db);
        println!("\nready");
        support::eventually("the queue drains", || client.status().borrow().pending == 0).await;
        println!("\ndone");
        std::future::pending::<()>().await;
    });
}

async fn conflict_client(uri: &str, store: Store) -> SyncClient {
    SyncClient::builder(support::keel(uri).await, store)
        // No download before the upload: every update meets the server's newer version.
        .change_streams(false)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

fn conflict_collection(client: &SyncClient, db: &str) -> keel_sync::SyncedCollection<Document> {
    client
        .collection::<Document>(db, "conflicts")
        .policy(keel_sync::ConflictPolicy::ClientWins)
        .subscribe(doc! {})
}

/// The server documents as the conflicts find them: changed by another writer (version 2,
/// field `outside`) after the child's updates were queued on version 1.
async fn reset_conflict_documents(coll: &mongodb::Collection<Document>, version: i64) {
    coll.delete_many(doc! {}).await.unwrap();
    let docs: Vec<Document> = (0..CONFLICT_DOCS)
        .map(|k| doc! { "_id": k, "n": 0, "outside": version, "_sync": { "v": version } })
        .collect();
    coll.insert_many(docs).await.unwrap();
}

/// A store whose replica holds every document at version 1 and whose queue holds one `$inc`
/// of each, made offline (the server stopped).
async fn conflict_template(server: &keel_testkit::TestServer, path: &std::path::Path, db: &str) {
    let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let coll = raw.database(db).collection::<Document>("conflicts");
    reset_conflict_documents(&coll, 1).await;
    let client = conflict_client(&server.uri(), Store::open(path).unwrap()).await;
    let notes = conflict_collection(&client, db);
    support::eventually("the documents download", || {
        (0..CONFLICT_DOCS).all(|k| notes.get(k).unwrap().is_some())
    })
    .await;
    server.stop().await;
    support::eventually("the client goes offline", || {
        client.status().borrow().connectivity == keel_sync::Connectivity::Offline
    })
    .await;
    for k in 0..CONFLICT_DOCS {
        notes.update(k, Changes::new().inc("n", 1)).await.unwrap();
    }
    drop(notes);
    drop(client);
    server.restart().await.unwrap();
    // The client's task lets go of the file once it notices the client is gone.
    drop(support::reopen(path).await);
}

/// A conflict decided while its write is on the way (the server applies it, the process dies
/// before storing the acknowledgement) is in the conflict log after the restart: every
/// conflicting operation is logged exactly once, whenever the upload was killed.
#[test]
fn every_conflict_is_logged_once_whatever_moment_the_upload_is_killed() {
    if in_child() || support::skips_on_real_server("stops and restarts its server") {
        return;
    }
    support::runtime().block_on(async move {
        let server = keel_testkit::TestServer::start().await.unwrap();
        conflict_crash_trials(&server).await;
    });
}

/// The same against a replica set, where the upload runs in transactions: a kill before the
/// commit leaves nothing applied, one after it leaves the marks.
#[test]
fn every_conflict_is_logged_once_whatever_moment_an_upload_in_a_transaction_is_killed() {
    if in_child() || support::skips_on_real_server("stops and restarts its server") {
        return;
    }
    support::runtime().block_on(async move {
        // The default transaction lifetime limit (60 s): a killed child's open transaction
        // is ended by the restarted client (`killSessions`), not by the server.
        let server = keel_testkit::TestServer::replica_set("rs0", 1)
            .await
            .unwrap();
        conflict_crash_trials(&server).await;
    });
}

/// `KEEL_SYNC_CONFLICT_CRASH_TRIALS` (default 20) SIGKILLs of a child uploading conflicting
/// updates to `server`.
async fn conflict_crash_trials(server: &keel_testkit::TestServer) {
    let trials = support::count_from_env("KEEL_SYNC_CONFLICT_CRASH_TRIALS", 20);
    {
        let db = support::database("conflict_crash");
        let template = support::store_path("conflict_template");
        conflict_template(server, &template, &db).await;
        let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
        let coll = raw.database(&db).collection::<Document>("conflicts");
        let mut killed_mid_upload = 0;
        for trial in 0..trials {
            let path = support::store_path("conflict_crash");
            std::fs::copy(&template, &path).unwrap();
            reset_conflict_documents(&coll, 2).await;
            let (child_path, uri, child_db) = (path.clone(), server.uri(), db.clone());
            tokio::task::spawn_blocking(move || {
                let mut rng = rand::rng();
                kill_child_at_random(
                    "conflict_crash_child",
                    &[
                        (CONFLICT_CHILD_VAR, child_path.as_os_str()),
                        (URI_VAR, std::ffi::OsStr::new(&uri)),
                        (DB_VAR, std::ffi::OsStr::new(&child_db)),
                    ],
                    150_000,
                    &mut rng,
                )
            })
            .await
            .unwrap();
            let store = Store::open(&path).unwrap();
            let queued = store.pending().unwrap();
            let applied = coll.count_documents(doc! { "n": 1 }).await.unwrap();
            if !queued.is_empty() && applied > 0 {
                killed_mid_upload += 1;
            }
            let client = conflict_client(&server.uri(), store).await;
            let _notes = conflict_collection(&client, &db);
            support::eventually("the queue drains", || client.status().borrow().pending == 0).await;
            assert_each_conflict_once(&client, &coll, trial).await;
            drop(client);
        }
        eprintln!(
            "{trials} SIGKILL trials of a conflicting upload, {killed_mid_upload} in the middle of it; every conflict logged once"
        );
    }
}

/// Every conflicting operation logged once, and applied once on the server's document (client
/// wins: `n` incremented once, the outside change kept).
async fn assert_each_conflict_once(
    client: &SyncClient,
    coll: &mongodb::Collection<Document>,
    trial: usize,
) {
    let logged = client.store().conflicts().unwrap();
    let mut logged_ops: Vec<uuid::Uuid> = logged.iter().map(|c| c.operation.op_id).collect();
    logged_ops.sort();
    logged_ops.dedup();
    assert_eq!(
        (logged.len(), logged_ops.len()),
        (CONFLICT_DOCS as usize, CONFLICT_DOCS as usize),
        "trial {trial}: {} conflicts logged for {CONFLICT_DOCS} conflicting operations",
        logged.len()
    );
    for k in 0..CONFLICT_DOCS {
        let found = coll.find_one(doc! { "_id": k }).await.unwrap().unwrap();
        assert_eq!(found.get_i32("n").unwrap(), 1, "trial {trial}: {found}");
        assert_eq!(
            found.get_i64("outside").unwrap(),
            2,
            "trial {trial}: {found}"
        );
    }
}

/// Whether an open transaction of someone else holds document `_id: 0`: a transaction writing
/// it meets `WriteConflict` (it is aborted either way, so it never changes the document).
async fn held_by_another_transaction(
    client: &mongodb::Client,
    coll: &mongodb::Collection<Document>,
) -> bool {
    let mut session = client.start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    let wrote = coll
        .update_one(doc! { "_id": 0 }, doc! { "$set": { "probe": true } })
        .session(&mut session)
        .await;
    let _ = session.abort_transaction().await;
    match wrote {
        Ok(_) => false,
        Err(error) => {
            assert!(
                error.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR),
                "the probe failed otherwise: {error}"
            );
            true
        }
    }
}

/// A child killed while its upload transaction is open (its commit held by a fail point) left
/// that transaction holding every document of the batch. The restarted client kills the
/// session it recorded (`killSessions`) instead of waiting for the server's lifetime limit
/// (the default 60 s here): its queue drains well within 20 s, each operation once.
#[test]
fn a_client_killed_inside_its_transaction_uploads_again_without_waiting_for_the_server() {
    if in_child() || support::skips_on_real_server("stops and restarts its server") {
        return;
    }
    support::runtime().block_on(async move {
        let server = keel_testkit::TestServer::builder()
            .replica_set("rs0", 1)
            .start()
            .await
            .unwrap();
        let db = support::database("killed_in_transaction");
        let path = support::store_path("killed_in_transaction");
        conflict_template(&server, &path, &db).await;
        let raw = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
        let coll = raw.database(&db).collection::<Document>("conflicts");
        reset_conflict_documents(&coll, 2).await;
        // The child's commit never arrives: its connection waits, then closes unanswered.
        server
            .fail_command(
                keel_testkit::FailCommand::new(["commitTransaction"])
                    .block_connection(Duration::from_secs(120))
                    .close_connection()
                    .times(1),
            )
            .unwrap();
        let (child_path, uri, child_db) = (path.clone(), server.uri(), db.clone());
        let (probe_client, probe_coll) = (raw.clone(), coll.clone());
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            kill_child_when(
                "conflict_crash_child",
                &[
                    (CONFLICT_CHILD_VAR, child_path.as_os_str()),
                    (URI_VAR, std::ffi::OsStr::new(&uri)),
                    (DB_VAR, std::ffi::OsStr::new(&child_db)),
                ],
                || {
                    runtime.block_on(async {
                        let held = tokio::time::timeout(support::PATIENCE, async {
                            while !held_by_another_transaction(&probe_client, &probe_coll).await {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        })
                        .await;
                        assert!(
                            held.is_ok(),
                            "the child's transaction never held the documents"
                        );
                    });
                },
            )
        })
        .await
        .unwrap();
        server.clear_fail_points();
        assert_eq!(
            coll.count_documents(doc! { "n": 1 }).await.unwrap(),
            0,
            "the killed transaction applied nothing"
        );
        let client = conflict_client(&server.uri(), Store::open(&path).unwrap()).await;
        let _notes = conflict_collection(&client, &db);
        let mut status = client.status();
        let drained =
            tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| s.pending == 0))
                .await;
        assert!(
            drained.is_ok(),
            "the queue did not drain within 20 s: the killed transaction still holds its documents"
        );
        assert_each_conflict_once(&client, &coll, 0).await;
    });
}
