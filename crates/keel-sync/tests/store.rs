//! The store file: reopening keeps the queue, another process holding it and a damaged file
//! are typed errors (never a panic or a silent reset).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{io::Write as _, process::Stdio, time::Duration};

use keel_sync::{Store, SyncError};

const HOLD_VAR: &str = "KEEL_SYNC_TEST_HOLD_STORE";

/// The child side of `a_store_held_by_another_process_is_store_locked`: opens the store, says
/// so, and holds it until killed.
#[test]
fn hold_store_child() {
    let Ok(path) = std::env::var(HOLD_VAR) else {
        return;
    };
    let store = Store::open(&path).unwrap();
    println!("held {}", store.client_id());
    std::io::stdout().flush().unwrap();
    // The parent kills this process long before.
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_store_held_by_another_process_is_store_locked() {
    let path = support::store_path("locked");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_store_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_VAR, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "the child exited"
        );
        if line.contains("held ") {
            break;
        }
    }
    let opened = Store::open(&path);
    child.kill().unwrap();
    child.wait().unwrap();
    match opened {
        Err(SyncError::StoreLocked { path: p }) => assert_eq!(p, path),
        other => panic!("expected StoreLocked, got {other:?}"),
    }
    let message = Store::open(&path).map(|_| ()).err();
    assert!(
        message.is_none(),
        "after the holder is gone the store opens: {message:?}"
    );
}

#[test]
fn a_damaged_store_is_store_corrupt_and_left_in_place() {
    let path = support::store_path("garbage");
    std::fs::write(&path, vec![0x5a_u8; 64 * 1024]).unwrap();
    match Store::open(&path) {
        Err(error @ SyncError::StoreCorrupt { .. }) => {
            let text = error.to_string();
            assert!(text.contains("damaged"), "{text}");
        }
        other => panic!("expected StoreCorrupt, got {other:?}"),
    }
    // Not reset: the bytes are still what they were.
    assert!(std::fs::read(&path).unwrap().iter().all(|b| *b == 0x5a));
}

#[test]
fn a_store_with_a_damaged_header_is_store_corrupt() {
    let path = support::store_path("header");
    drop(Store::open(&path).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().take(512) {
        *b ^= 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    match Store::open(&path) {
        Err(SyncError::StoreCorrupt { .. }) => {}
        other => panic!("expected StoreCorrupt, got {other:?}"),
    }
}

#[test]
fn the_client_id_survives_reopening() {
    let path = support::store_path("reopen");
    let first = Store::open(&path).unwrap().client_id().to_owned();
    // The commit thread holds the database until it sees the store dropped.
    let second = Store::open(&path).unwrap();
    assert_eq!(second.client_id(), first);
    assert!(uuid::Uuid::parse_str(&first).is_ok());
}
