//! The standalone binary: prints its URI once listening, serves the driver, keeps data with
//! `--data` across a kill and restart, and rejects bad flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;

use mongodb::Client;
use mongodb::bson::{Document, doc};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

async fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keel-testkit"))
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    support::within(BufReader::new(stdout).read_line(&mut line))
        .await
        .unwrap();
    let uri = line
        .split_whitespace()
        .find(|w| w.starts_with("mongodb://"))
        .expect("uri printed")
        .to_owned();
    assert!(line.contains("listening on mongodb://"), "{line}");
    (child, uri)
}

#[tokio::test]
async fn binary_serves_and_persists_across_kill() {
    let dir = std::env::temp_dir().join(format!("keel-testkit-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_str().unwrap();
    let (mut child, uri) = spawn(&["--bind", "127.0.0.1:0", "--data", dir_s]).await;
    let client = Client::with_options(support::fast_options(&uri).await).unwrap();
    let c = client.database("bin").collection::<Document>("c");
    c.insert_one(doc! {"_id": 1, "kept": true}).await.unwrap();
    child.kill().await.unwrap();

    let (mut child, uri) = spawn(&["--bind=127.0.0.1:0", "--data", dir_s]).await;
    let client = Client::with_options(support::fast_options(&uri).await).unwrap();
    let c = client.database("bin").collection::<Document>("c");
    assert_eq!(
        c.find_one(doc! {}).await.unwrap(),
        Some(doc! {"_id": 1, "kept": true})
    );
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn binary_rejects_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_keel-testkit"))
        .args(["--bind", "nowhere"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an IP address"));
}

#[tokio::test]
async fn binary_runs_a_replica_set() {
    let (mut child, uri) = spawn(&[
        "--bind",
        "127.0.0.1:0",
        "--replica-set",
        "rs9",
        "--members",
        "3",
    ])
    .await;
    assert!(uri.ends_with("/?replicaSet=rs9"), "{uri}");
    assert_eq!(uri.matches("127.0.0.1:").count(), 3, "{uri}");
    let client = Client::with_options(support::fast_options(&uri).await).unwrap();
    let c = client.database("bin").collection::<Document>("rs");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    let hello = client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .await
        .unwrap();
    assert_eq!(hello.get_str("setName").unwrap(), "rs9");
    child.kill().await.unwrap();
}
