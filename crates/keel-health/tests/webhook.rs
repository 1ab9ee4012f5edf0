//! The webhook sink against a local HTTP receiver (real time, loopback only): JSON body,
//! bearer header, retry on 5xx and refused connections, no retry on 4xx, nothing secret in
//! errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use keel_core::Secret;
use keel_health::{
    AlertEvent, AlertKind, AlertSink, SinkError, Transition, WebhookConfig, WebhookSink,
};
use keel_retry::{BackoffConfig, Jitter};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

fn event() -> AlertEvent {
    AlertEvent {
        kind: AlertKind::ChecksFailing,
        transition: Transition::Raised,
        value: "3".into(),
        threshold: "3".into(),
        at: SystemTime::now(),
    }
}

fn config() -> WebhookConfig {
    let mut config = WebhookConfig::default();
    config.attempts = 3;
    config.backoff = BackoffConfig {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        multiplier: 2.0,
        jitter: Jitter::None,
    };
    config.timeout = Duration::from_secs(5);
    config.bearer = Some(Secret::new("hook-token-123".to_owned()));
    config
}

/// A receiver answering each request with the next status; sends each request seen.
async fn receiver(statuses: Vec<u16>) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for status in statuses {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            // Read the head, then the body by Content-Length.
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                assert!(n > 0, "client closed early");
            }
            seen.send(String::from_utf8(request).unwrap()).unwrap();
            let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            stream.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    (format!("http://{addr}/hooks/secret-path"), requests)
}

#[tokio::test]
async fn retries_a_5xx_then_delivers_json_with_the_bearer() {
    let (url, mut requests) = receiver(vec![503, 204]).await;
    let sink = WebhookSink::new(&url, config()).unwrap();
    sink.deliver(event()).await.unwrap();
    let first = requests.recv().await.unwrap();
    let second = requests.recv().await.unwrap();
    assert_eq!(first, second, "the same event is posted again");
    assert!(second.starts_with("POST /hooks/secret-path HTTP/1.1\r\n"));
    assert!(second.contains("\r\nAuthorization: Bearer hook-token-123\r\n"));
    assert!(second.contains("\r\nContent-Type: application/json\r\n"));
    let body: Value = serde_json::from_str(second.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["alert"], "checks_failing");
    assert_eq!(body["transition"], "raised");
    assert_eq!(body["summary"], "checks_failing raised: 3 (threshold 3)");
}

#[tokio::test]
async fn a_4xx_is_final() {
    let (url, mut requests) = receiver(vec![404, 204]).await;
    let sink = WebhookSink::new(&url, config()).unwrap();
    let err = sink.deliver(event()).await.unwrap_err();
    assert_eq!(
        err,
        SinkError::Failed {
            attempts: 1,
            detail: "HTTP 404".into()
        }
    );
    requests.recv().await.unwrap();
    assert!(requests.try_recv().is_err());
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_then_reported_without_secrets() {
    // Bind then drop: the port refuses connections.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = WebhookSink::new(&format!("http://127.0.0.1:{port}/secret-path"), config()).unwrap();
    let err = sink.deliver(event()).await.unwrap_err();
    let SinkError::Failed { attempts, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*attempts, 3);
    let shown = format!("{err} {err:?} {sink:?}");
    assert!(
        !shown.contains("secret-path") && !shown.contains("hook-token"),
        "{shown}"
    );
}

#[test]
fn invalid_urls_are_typed_errors_without_the_url() {
    let err = WebhookSink::new("ftp://user:secret@x/", WebhookConfig::default()).unwrap_err();
    assert!(!err.to_string().contains("secret"));
}
