//! Every retry emits a `tracing` event (op, class, failed attempt, delay), and giving up emits
//! one more (attempts, reason).
//!
//! A test binary of its own: `tracing` caches each callsite's interest when the callsite is
//! first hit, so a test of another binary hitting it with no capturing subscriber alive could
//! switch it off for the test that captures. Here every test installs its subscriber first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
};

use keel_retry::{Jitter, RetryConfig};
use tower::Layer;
use tracing::{
    Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    span,
};

mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "generic/support.rs"]
mod support;

use common::run_paused;
use support::{Kind, Req, Script, config, layer, ms, send};

/// One captured event: its level and fields (`Debug`-formatted; strings as they are).
type Captured = (Level, BTreeMap<String, String>);

struct Capture(Arc<Mutex<Vec<Captured>>>);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "keel_retry"
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// Runs `body` on a paused current-thread runtime on this thread, with a capturing subscriber
/// as this thread's default, and returns the events.
fn capture<F: std::future::Future>(body: F) -> Vec<Captured> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Capture(Arc::clone(&events));
    tracing::subscriber::with_default(subscriber, || run_paused(body));
    let events = events.lock().unwrap();
    events.clone()
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const RETRYING: &str = "retrying after a failed attempt";

#[test]
fn each_retry_emits_an_event_with_op_class_attempt_and_delay() {
    let events = capture(async {
        let script = Script::new([Err(Kind::Transient), Err(Kind::Hinted(ms(300)))]);
        let config = RetryConfig {
            max_attempts: 3,
            ..config(Jitter::None)
        };
        let mut service = layer(config).layer(script.service());
        send(&mut service, Req::plain()).await.unwrap_err();
    });
    assert_eq!(
        events,
        [
            (
                Level::DEBUG,
                fields(&[
                    ("message", RETRYING),
                    ("op", "request"),
                    ("class", "transient"),
                    ("failed_attempt", "1"),
                    ("delay_ms", "100"),
                ])
            ),
            (
                Level::DEBUG,
                fields(&[
                    ("message", RETRYING),
                    ("op", "request"),
                    ("class", "hinted"),
                    ("failed_attempt", "2"),
                    // The 300 ms hint lengthens the 200 ms backoff.
                    ("delay_ms", "300"),
                ])
            ),
            (
                Level::WARN,
                fields(&[
                    ("message", "giving up"),
                    ("op", "request"),
                    ("class", "transient"),
                    ("attempts", "3"),
                    ("reason", "max attempts reached"),
                ])
            ),
        ]
    );
}

#[test]
fn an_error_that_is_not_retried_is_reported_quietly() {
    let events = capture(async {
        let script = Script::new([Err(Kind::Fatal)]);
        let mut service = layer(config(Jitter::None)).layer(script.service());
        send(&mut service, Req::plain()).await.unwrap_err();
    });
    assert_eq!(
        events,
        [(
            Level::DEBUG,
            fields(&[
                ("message", "not retrying"),
                ("op", "request"),
                ("class", "final"),
                ("attempts", "1"),
                ("reason", "not retryable"),
            ])
        )]
    );
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_events_name_the_operation_and_the_error_class() {
    use keel_core::{DriverFailure, Error, ErrorFacts, Operation, OperationKind};
    use keel_retry::RetryLayer;
    use tower::{ServiceExt, service_fn};

    let events = capture(async {
        let reset = service_fn(|_op: Operation<u32>| async {
            Err::<u32, _>(Error::from_facts(
                &ErrorFacts::new(DriverFailure::Io),
                "connection reset",
            ))
        });
        let config = RetryConfig {
            max_attempts: 2,
            ..config(Jitter::None)
        };
        let service = RetryLayer::mongodb(config).unwrap().layer(reset);
        let find = Operation::new("users.find", OperationKind::Read, |_client| async {
            unreachable!("the mock service never runs the closure")
        });
        service.oneshot(find).await.unwrap_err();
    });
    assert_eq!(
        events,
        [
            (
                Level::DEBUG,
                fields(&[
                    ("message", RETRYING),
                    ("op", "users.find"),
                    ("class", "network"),
                    ("failed_attempt", "1"),
                    ("delay_ms", "100"),
                ])
            ),
            (
                Level::WARN,
                fields(&[
                    ("message", "giving up"),
                    ("op", "users.find"),
                    ("class", "network"),
                    ("attempts", "2"),
                    ("reason", "max attempts reached"),
                ])
            ),
        ]
    );
}
