//! State changes are reported as `tracing` events naming the breaker, both states and the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io,
    sync::{Arc, Mutex},
};

use keel_breaker::{Breaker, BreakerConfig, CallOutcome};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn transitions_are_traced() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let config = BreakerConfig {
            consecutive_failures: Some(1),
            ..BreakerConfig::default()
        };
        let breaker = Breaker::new("cluster0", config).unwrap();
        breaker.try_acquire().unwrap().record(CallOutcome::Failure);
        breaker.reset();
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    for expected in [
        "WARN",
        "circuit opened",
        "breaker=\"cluster0\"",
        "from=\"closed\"",
        "to=\"open\"",
        "reason=\"consecutive failures\"",
    ] {
        assert!(
            lines[0].contains(expected),
            "{expected} missing from {}",
            lines[0]
        );
    }
    for expected in ["INFO", "to=\"closed\"", "reason=\"reset by operator\""] {
        assert!(
            lines[1].contains(expected),
            "{expected} missing from {}",
            lines[1]
        );
    }
}
