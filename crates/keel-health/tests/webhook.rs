//! The webhook sink against a local HTTP receiver (real time, loopback only): JSON body,
//! bearer header, retry on 5xx and refused connections, no retry on 4xx, nothing secret in
//! errors; HTTPS to a receiver whose certificate a private CA signed, trusted or not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use keel_core::Secret;
use keel_health::{
    AlertEvent, AlertKind, AlertSink, SinkError, Transition, WebhookConfig, WebhookError,
    WebhookSink,
};
use keel_retry::{BackoffConfig, Jitter};
use keel_testkit::TlsIdentity;
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};
use tokio_rustls::TlsAcceptor;

fn event() -> AlertEvent {
    AlertEvent {
        kind: AlertKind::ChecksFailing,
        transition: Transition::Raised,
        value: "3".into(),
        threshold: "3".into(),
        at: SystemTime::now(),
        component: None,
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
    let (addr, requests) = serve(statuses, None).await;
    (format!("http://{addr}/hooks/secret-path"), requests)
}

/// The same receiver over TLS, with a certificate for 127.0.0.1 that `identity`'s CA signed.
async fn tls_receiver(
    statuses: Vec<u16>,
    identity: &TlsIdentity,
) -> (String, mpsc::UnboundedReceiver<String>) {
    let acceptor = TlsAcceptor::from(identity.server_config().unwrap());
    let (addr, requests) = serve(statuses, Some(acceptor)).await;
    (format!("https://{addr}/hooks/secret-path"), requests)
}

/// Accepts one connection per status. A failed TLS handshake uses up its status and sends
/// nothing: the client refused the certificate.
async fn serve(
    statuses: Vec<u16>,
    tls: Option<TlsAcceptor>,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for status in statuses {
            let (stream, _) = listener.accept().await.unwrap();
            let request = match &tls {
                None => answer(stream, status).await,
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => answer(stream, status).await,
                    Err(_) => continue,
                },
            };
            seen.send(request).unwrap();
        }
    });
    (addr, requests)
}

/// Reads one request (the head, then the body by Content-Length) and answers `status`.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, status: u16) -> String {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
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
    let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(reply.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    String::from_utf8(request).unwrap()
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

#[tokio::test]
async fn https_to_a_receiver_signed_by_a_trusted_private_ca_delivers() {
    let identity = TlsIdentity::self_signed().unwrap();
    let (url, mut requests) = tls_receiver(vec![204], &identity).await;
    let mut config = config();
    config.ca_pem = identity.ca_pem().map(str::to_owned);
    let sink = WebhookSink::new(&url, config).unwrap();
    sink.deliver(event()).await.unwrap();
    let request = requests.recv().await.unwrap();
    assert!(request.starts_with("POST /hooks/secret-path HTTP/1.1\r\n"));
    assert!(request.contains("\r\nAuthorization: Bearer hook-token-123\r\n"));
    let body: Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["alert"], "checks_failing");
}

#[tokio::test]
async fn https_to_an_untrusted_certificate_is_refused_and_reported_without_secrets() {
    let identity = TlsIdentity::self_signed().unwrap();
    let (url, mut requests) = tls_receiver(vec![204, 204, 204], &identity).await;
    // The public web roots only: the private CA is not among them.
    let sink = WebhookSink::new(&url, config()).unwrap();
    let err = sink.deliver(event()).await.unwrap_err();
    let SinkError::Failed { attempts, detail } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*attempts, 3);
    assert!(
        detail.starts_with("TLS: ") && detail.contains("certificate"),
        "{detail}"
    );
    let shown = format!("{err} {err:?} {sink:?}");
    assert!(
        !shown.contains("secret-path") && !shown.contains("hook-token"),
        "{shown}"
    );
    assert!(requests.try_recv().is_err(), "no request went out");
}

#[test]
fn bad_tls_and_backoff_settings_are_typed_errors_at_construction() {
    let with = |ca_pem: &str| {
        let mut config = WebhookConfig::default();
        config.ca_pem = Some(ca_pem.to_owned());
        config
    };
    for bad in ["not a certificate", ""] {
        let err = WebhookSink::new("https://hooks.example.com/x", with(bad)).unwrap_err();
        assert!(
            matches!(err, WebhookError::InvalidCaCertificate(_)),
            "{err:?}"
        );
    }
    let identity = TlsIdentity::self_signed().unwrap();
    let err = WebhookSink::new(
        "http://hooks.example.com/x",
        with(identity.ca_pem().unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("use https://"), "{err}");

    let mut config = WebhookConfig::default();
    config.backoff.cap = Duration::from_millis(1);
    let err = WebhookSink::new("https://hooks.example.com/x", config).unwrap_err();
    assert!(matches!(err, WebhookError::InvalidBackoff(_)), "{err:?}");
}
