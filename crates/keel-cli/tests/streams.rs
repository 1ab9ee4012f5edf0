//! `keel streams status|reset` on a file checkpoint store, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn keel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .output()
        .unwrap()
}

/// `keel streams status` of the consumer `orders` whose checkpoint is in `dir`.
fn status(dir: &str) -> Output {
    keel(&[
        "streams",
        "status",
        "--name",
        "orders",
        "--checkpoint-dir",
        dir,
    ])
}

/// `keel streams reset --to <to>` of the consumer `orders` whose checkpoint is in `dir`.
fn reset(dir: &str, to: &str) -> Output {
    keel(&[
        "streams",
        "reset",
        "--name",
        "orders",
        "--checkpoint-dir",
        dir,
        "--to",
        to,
    ])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn reset_sets_and_forgets_a_checkpoint_and_status_shows_it() {
    let dir = std::env::temp_dir().join(format!("keel-cli-streams-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let out = status(d);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("no checkpoint"),
        "{}",
        text(&out.stdout)
    );

    let out = reset(d, "82ab01");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&status(d).stdout);
    assert!(
        shown.contains("version 1") && shown.contains("82ab01"),
        "{shown}"
    );

    assert!(reset(d, "now").status.success());
    assert!(text(&status(d).stdout).contains("no checkpoint"));

    let out = reset(d, "yesterday");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--to must be 'now', a resume token"),
        "{}",
        text(&out.stderr)
    );
    // A time: the consumer starts at that cluster time.
    let out = reset(d, "2025-12-02T01:00:00Z");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&status(d).stdout);
    assert!(shown.contains("keelStartAt"), "{shown}");
    let _ = std::fs::remove_dir_all(dir);
}
