//! Alert sinks and their dispatch, under paused time: the log sink's events, the channel sink
//! when full or closed, and a stalled sink that must not delay checks or other sinks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use futures_util::future::BoxFuture;
use keel_health::{
    AlertEvent, AlertKind, AlertSink, ChannelSink, HealthConfig, HealthMonitor, LogSink, SinkError,
    Transition,
};
use keel_pool_core::ConnectionState;
use support::{Fake, PATIENCE, Ping, until};

fn event(transition: Transition) -> AlertEvent {
    AlertEvent {
        kind: AlertKind::LatencyHigh,
        transition,
        value: "812.0ms".into(),
        threshold: "500.0ms".into(),
        at: SystemTime::now(),
        component: None,
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_log_sink_warns_on_raise_and_informs_on_clear() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    LogSink.deliver(event(Transition::Raised)).await.unwrap();
    LogSink.deliver(event(Transition::Cleared)).await.unwrap();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("WARN") && lines[0].contains("keel alert raised"));
    assert!(lines[0].contains("alert=\"latency_high\"") || lines[0].contains("alert=latency_high"));
    assert!(lines[1].contains("INFO") && lines[1].contains("keel alert cleared"));
}

#[tokio::test]
async fn the_channel_sink_never_waits() {
    let (sink, mut receiver) = ChannelSink::new(1);
    sink.deliver(event(Transition::Raised)).await.unwrap();
    assert_eq!(
        sink.deliver(event(Transition::Cleared)).await,
        Err(SinkError::Full)
    );
    assert_eq!(
        receiver.recv().await.unwrap().transition,
        Transition::Raised
    );
    drop(receiver);
    assert_eq!(
        sink.deliver(event(Transition::Cleared)).await,
        Err(SinkError::Closed)
    );
}

/// A sink that never finishes a delivery.
struct Stalled(Arc<Mutex<u32>>);

impl AlertSink for Stalled {
    fn name(&self) -> &'static str {
        "stalled"
    }
    fn deliver(&self, _event: AlertEvent) -> BoxFuture<'static, Result<(), SinkError>> {
        *self.0.lock().unwrap() += 1;
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_sink_delays_neither_checks_nor_other_sinks() {
    let fake = Fake::new();
    let stalled = Arc::new(Mutex::new(0));
    let (sink, mut alerts) = ChannelSink::new(16);
    let mut config = HealthConfig::default();
    config.interval = Duration::from_secs(1);
    config.jitter = 0.0;
    let monitor = HealthMonitor::builder(fake.clone(), config)
        .sink(Stalled(Arc::clone(&stalled)))
        .sink(sink)
        .spawn()
        .unwrap();
    let health = monitor.handle();
    fake.set_ping(Ping::Fail);
    fake.set_state(ConnectionState::Reconnecting);
    let raised = tokio::time::timeout(PATIENCE, alerts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raised.transition, Transition::Raised);
    fake.set_ping(Ping::Ok(Duration::from_millis(1)));
    fake.set_state(ConnectionState::Connected);
    let mut cleared_checks_failing = false;
    while !cleared_checks_failing {
        let next = tokio::time::timeout(PATIENCE, alerts.recv())
            .await
            .unwrap()
            .unwrap();
        cleared_checks_failing =
            next.kind == AlertKind::ChecksFailing && next.transition == Transition::Cleared;
    }
    let report = until(&health, |r| r.checks >= 20).await;
    assert!(report.checks >= 20);
    // The stalled sink got its first event and is still stuck on it; the rest wait in its queue.
    assert_eq!(*stalled.lock().unwrap(), 1);
}
