//! Runs `keel demo` as a user would: a short run against the embedded deployment must inject
//! its faults and prove that no acknowledged write was lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clean_env;

use clean_env::{exited, keel, keel_command, succeeded, text};

/// The number after `name=` on the report's `result:` line.
fn result_field(stdout: &str, name: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("result: "))
        .unwrap_or_else(|| panic!("no result line in:\n{stdout}"));
    let value = line
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    value.parse().unwrap()
}

#[test]
fn a_five_second_demo_survives_its_faults_and_loses_nothing() {
    let out = keel(&["demo", "--duration", "5s", "--seed", "7"]);
    let stdout = succeeded(&out);

    // The schedule ran, scaled to five seconds, and Keel saw the trouble.
    for fault in [
        "⚡ connection reset",
        "⚡ +150 ms latency",
        "⚡ black hole",
        "⚡ server outage",
        "⚡ primary killed",
        "⚡ primary step-down",
    ] {
        assert!(stdout.contains(fault), "{fault} missing from:\n{stdout}");
    }
    assert!(stdout.contains("✓ server outage over"), "{stdout}");
    assert!(stdout.contains("✓ primary killed over"), "{stdout}");
    assert!(stdout.contains("connection → reconnecting"), "{stdout}");
    assert!(stdout.contains("seed 7"), "{stdout}");
    assert!(
        stdout.contains("embedded keel-testkit replica set rs0 (3 members"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stepped down,") && stdout.contains(" elected"),
        "{stdout}"
    );

    // The proof: every acknowledged write found exactly once.
    let acknowledged = result_field(&stdout, "acknowledged");
    assert!(
        acknowledged > 50,
        "too little work to prove anything:\n{stdout}"
    );
    assert_eq!(result_field(&stdout, "found"), acknowledged, "{stdout}");
    assert_eq!(result_field(&stdout, "missing"), 0, "{stdout}");
    assert_eq!(result_field(&stdout, "duplicated"), 0, "{stdout}");
    assert_eq!(result_field(&stdout, "read_misses"), 0, "{stdout}");
    // The sync client wrote through the faults, and its queue drained: each of its
    // acknowledged local writes is on the server exactly once.
    assert!(result_field(&stdout, "sync_acked") > 20, "{stdout}");
    assert_eq!(result_field(&stdout, "sync_missing"), 0, "{stdout}");
    assert_eq!(result_field(&stdout, "sync_duplicated"), 0, "{stdout}");
    assert!(stdout.contains("✓ Nothing was lost: all "), "{stdout}");
    // The change-stream consumer next to the workload, killed and restarted from its file
    // checkpoint halfway, saw every acknowledged write at least once.
    assert_eq!(result_field(&stdout, "stream_missing"), 0, "{stdout}");
    assert_eq!(
        result_field(&stdout, "stream_seen"),
        acknowledged,
        "{stdout}"
    );
    result_field(&stdout, "stream_redelivered");
    assert!(
        stdout.contains("change-stream consumer killed and restarted from its checkpoint file"),
        "{stdout}"
    );
    assert!(stdout.contains("│ stream lag "), "{stdout}");
    // Outside a terminal the status line is printed as plain lines, not redrawn.
    assert!(!stdout.contains('\r'), "{stdout}");
    assert!(stdout.contains("ops/s │ retried"), "{stdout}");
}

#[test]
fn bad_demo_arguments_fail_with_a_clear_message() {
    let out = keel(&["demo", "--duration", "5"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: invalid value '5' for '--duration <DURATION>'")
            && stderr.contains("no unit"),
        "{stderr}"
    );

    let out = keel(&["demo", "--keep"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--uri"), "{}", text(&out.stderr));
}

#[test]
fn an_unreachable_uri_fails_in_one_sentence_without_the_password() {
    let out = keel(&[
        "demo",
        "--uri",
        "mongodb://demo:S3cretPw@127.0.0.1:1/?serverSelectionTimeoutMS=300",
        "--duration",
        "1s",
    ]);
    let (stdout, stderr) = exited(&out, 1);
    assert!(
        !stdout.contains("S3cretPw") && !stderr.contains("S3cretPw"),
        "{stdout}{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot connect to mongodb://<redacted>@127.0.0.1:1/")
            && stderr.contains("keel doctor"),
        "{stderr}"
    );
    // Nothing is injected into a deployment the demo does not own.
    assert!(stdout.contains("faults    none"), "{stdout}");
}

/// The case: a wrong password used to end with the driver's `Debug` dump
/// (`auth error: Kind: SCRAM failure: …, source: Some(Error { kind: Command(…`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_with_what_went_wrong_and_what_to_do() {
    let server = keel_testkit::TestServer::builder()
        .auth("app", "s3cret")
        .start()
        .await
        .unwrap();
    let uri = format!("mongodb://app:Wr0ngPw@{}/", server.addr());
    let out =
        tokio::task::spawn_blocking(move || keel(&["demo", "--uri", &uri, "--duration", "1s"]))
            .await
            .unwrap();
    let (_, stderr) = exited(&out, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot connect to mongodb://<redacted>@127.0.0.1:")
            && stderr.contains(": the server rejected the user name or password (")
            && stderr.contains("Fix: Check both;")
            && stderr.contains("keel doctor"),
        "{stderr}"
    );
    for dump in ["Kind:", "source:", "Some(", "CommandError", "Wr0ngPw"] {
        assert!(!stderr.contains(dump), "{dump} in {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_uri_the_demo_uses_its_own_database_and_drops_it() {
    let server = keel_testkit::TestServer::start().await.unwrap();
    let uri = server.uri();
    let out = tokio::task::spawn_blocking(move || {
        keel(&["demo", "--uri", &uri, "--duration", "2s", "--rate", "100"])
    })
    .await
    .unwrap();
    let (stdout, _) = exited(&out, 0);
    assert!(result_field(&stdout, "acknowledged") > 0, "{stdout}");
    assert_eq!(result_field(&stdout, "missing"), 0, "{stdout}");
    assert!(stdout.contains("faults    none"), "{stdout}");
    let database = stdout
        .split_whitespace()
        .find(|word| word.starts_with("keel_demo_"))
        .unwrap_or_else(|| panic!("no database name in:\n{stdout}"))
        .to_owned();

    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let names = client.list_database_names().await.unwrap();
    assert!(
        !names.iter().any(|n| n.starts_with("keel_demo")),
        "{database} was not dropped: {names:?}"
    );
}

#[test]
fn the_demo_serves_the_health_dashboard_while_it_runs() {
    use std::io::{BufRead, BufReader, Read, Write};

    let mut child = keel_command(&["demo", "--duration", "3s", "--rate", "50"], &[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map(Result::unwrap)
        .find_map(|line| {
            line.strip_prefix("  dashboard ")
                .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        })
        .expect("the demo prints its dashboard URL");
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{url}");

    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /api/snapshot HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"connection\""), "{response}");

    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("missing=0 duplicated=0")),
        "{rest:?}"
    );
}
