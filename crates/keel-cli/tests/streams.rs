//! `keel streams status|reset` on a file checkpoint store, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn keel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn reset_sets_and_forgets_a_checkpoint_and_status_shows_it() {
    let dir = std::env::temp_dir().join(format!("keel-cli-streams-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let out = keel(&[
        "streams",
        "status",
        "--name",
        "orders",
        "--checkpoint-dir",
        d,
    ]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("no checkpoint"),
        "{}",
        text(&out.stdout)
    );

    let out = keel(&[
        "streams",
        "reset",
        "--name",
        "orders",
        "--checkpoint-dir",
        d,
        "--to",
        "82ab01",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = keel(&[
        "streams",
        "status",
        "--name",
        "orders",
        "--checkpoint-dir",
        d,
    ]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("version 1") && shown.contains("82ab01"),
        "{shown}"
    );

    let out = keel(&[
        "streams",
        "reset",
        "--name",
        "orders",
        "--checkpoint-dir",
        d,
        "--to",
        "now",
    ]);
    assert!(out.status.success());
    let out = keel(&[
        "streams",
        "status",
        "--name",
        "orders",
        "--checkpoint-dir",
        d,
    ]);
    assert!(text(&out.stdout).contains("no checkpoint"));

    let out = keel(&[
        "streams",
        "reset",
        "--name",
        "orders",
        "--checkpoint-dir",
        d,
        "--to",
        "yesterday",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--to must be 'now', a resume token"),
        "{}",
        text(&out.stderr)
    );
    // A time: the consumer starts at that cluster time.
    let out = keel(&[
        "streams",
        "reset",
        "--name",
        "orders",
        "--checkpoint-dir",
        d,
        "--to",
        "2025-12-02T01:00:00Z",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = keel(&[
        "streams",
        "status",
        "--name",
        "orders",
        "--checkpoint-dir",
        d,
    ]);
    assert!(
        text(&out.stdout).contains("keelStartAt"),
        "{}",
        text(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(dir);
}
