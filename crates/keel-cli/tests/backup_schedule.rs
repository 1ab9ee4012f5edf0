//! `keel backup schedule` watched from outside: `--metrics-addr` serves the `keel_backup_*`
//! metrics in the Prometheus format while the schedule runs, and `--alert-webhook` POSTs the
//! alert of a failed run (with the bearer token from `KEEL_ALERT_WEBHOOK_TOKEN`), through
//! keel-health's exporter and webhook sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mongodb::bson::{Document, doc};
use support::{Deployment, db, scratch};

/// A `keel backup schedule` child; killed (by its own handle) when dropped.
struct Schedule {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Schedule {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(["backup", "schedule"])
            .args(args)
            .env_remove("KEEL_URI")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The first stdout line containing `needle`.
    async fn line_with(&mut self, needle: &str) -> String {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let line = self.lines.recv().await.expect("keel exited early");
                if line.contains(needle) {
                    return line;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no line with {needle:?} within 60 s"))
    }
}

impl Drop for Schedule {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over plain HTTP/1.1; the response body.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_addr_serves_the_schedules_metrics_in_prometheus_format() {
    let server = Deployment::start().await;
    let app = db("sched_metrics");
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    client
        .database(&app)
        .collection::<Document>("items")
        .insert_many((0..20).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let root = scratch("schedule-metrics").join("root");
    let ns = format!("{app}.items");
    let uri = server.uri();
    let mut schedule = Schedule::start(
        &[
            "--uri",
            &uri,
            "--root",
            &root.to_string_lossy(),
            "--every",
            "1h",
            "--include",
            &ns,
            "--name",
            "nightly",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    let line = schedule.line_with("metrics at http://").await;
    let addr = line
        .trim_start_matches("metrics at http://")
        .trim_end_matches("/metrics")
        .to_owned();
    schedule.line_with("backup written to").await;
    // The job prints its line before the scheduler records the run: await the recorded run.
    let done = "keel_backup_last_documents{schedule=\"nightly\"} 20";
    let body = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let body = http_get(&addr, "/metrics");
            if body.contains(done) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the run never showed in the metrics: {}",
            http_get(&addr, "/metrics")
        )
    });
    assert!(
        body.contains("keel_backup_last_success_timestamp_seconds{schedule=\"nightly\"}"),
        "{body}"
    );
    assert!(
        body.contains("keel_backup_last_bytes{schedule=\"nightly\"}"),
        "{body}"
    );
    drop(schedule);
    let _ = client.database(&app).drop().await;
}

/// Accepts one HTTP request and answers 200; returns its head and body.
async fn one_request(listener: tokio::net::TcpListener) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if request.len() >= head_end + 4 + length {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    socket
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    String::from_utf8_lossy(&request).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_webhook_receives_the_alert_of_a_failed_run() {
    let server = Deployment::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/hooks/path-secret-3f9",
        listener.local_addr().unwrap()
    );
    let received = tokio::spawn(one_request(listener));
    let root = scratch("schedule-alert").join("root");
    let uri = server.uri();
    // Every run fails: the include pattern is not a namespace.
    let _schedule = Schedule::start(
        &[
            "--uri",
            &uri,
            "--root",
            &root.to_string_lossy(),
            "--every",
            "1h",
            "--include",
            "not a namespace",
            "--name",
            "nightly",
            "--alert-webhook",
            &hook,
        ],
        &[("KEEL_ALERT_WEBHOOK_TOKEN", "hook-token-0123456789")],
    );
    let request = tokio::time::timeout(Duration::from_secs(90), received)
        .await
        .expect("the webhook got the alert within 90 s")
        .unwrap();
    assert!(
        request.starts_with("POST /hooks/path-secret-3f9 "),
        "{request}"
    );
    assert!(
        request.contains("Bearer hook-token-0123456789"),
        "the bearer token from the environment: {request}"
    );
    assert!(request.contains("backup:nightly"), "{request}");
    assert!(request.contains("failed"), "{request}");
}
