//! OpenTelemetry spans (feature `otel`): one span per operation, a child span per attempt below
//! the retry layer, attributes and statuses; recorded by the OpenTelemetry SDK's in-memory exporter.
//! Run with `cargo test -p keel-health --features otel --test otel`.

#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use keel_core::{Error, ErrorClass, Operation};
use keel_health::otel::{OtelAttemptLayer, OtelLayer};
use keel_retry::{RetryConfig, RetryIf, RetryLayer};
use opentelemetry::{SpanId, Value, global, trace::Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// Spans as the OpenTelemetry SDK finishes them, exported synchronously into memory.
fn record_spans() -> InMemorySpanExporter {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    global::set_tracer_provider(provider);
    exporter
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn parent(span: &SpanData) -> Option<SpanId> {
    (span.parent_span_id != SpanId::INVALID).then_some(span.parent_span_id)
}

fn find(name: &'static str) -> Operation<u32> {
    Operation::read(name, |_client: mongodb::Client| async { Ok(1u32) })
}

#[tokio::test(start_paused = true)]
async fn one_span_per_operation_with_a_child_per_attempt() {
    let recorder = record_spans();

    // Fails the first attempt of every operation with a retryable class, then answers;
    // `orders.drop` always fails with a class the policy does not retry.
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let inner = service_fn(move |op: Operation<u32>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            match (op.name(), n) {
                ("orders.drop", _) => Err(Error::config("bad option on db1.internal.example")),
                (_, 0) => Err(Error::unreachable(Duration::from_millis(5))),
                _ => Ok(7),
            }
        }
    });
    let retry = RetryLayer::new(
        RetryIf::new(|e: &Error| e.class() == ErrorClass::ServerSelection),
        RetryConfig::default(),
    )
    .unwrap();
    let service = ServiceBuilder::new()
        .layer(OtelLayer::new())
        .layer(retry)
        .layer(OtelAttemptLayer::new())
        .service(inner);

    assert_eq!(
        service.clone().oneshot(find("users.find")).await.unwrap(),
        7
    );
    let spans = recorder.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let op = spans.iter().find(|s| s.name == "users.find").unwrap();
    assert_eq!(parent(op), None);
    assert_eq!(attr(op, "db.system.name"), Some(Value::from("mongodb")));
    assert_eq!(attr(op, "keel.operation.kind"), Some(Value::from("read")));
    assert_eq!(attr(op, "keel.attempts"), Some(Value::I64(2)));
    assert_eq!(op.status, Status::Ok);
    let attempts: Vec<&SpanData> = spans.iter().filter(|s| s.name == "keel.attempt").collect();
    assert_eq!(attempts.len(), 2);
    for (i, attempt) in attempts.iter().enumerate() {
        assert_eq!(
            parent(attempt),
            Some(op.span_context.span_id()),
            "attempt {i} is a child of the operation"
        );
        assert_eq!(attempt.span_context.trace_id(), op.span_context.trace_id());
        assert_eq!(
            attr(attempt, "keel.attempt"),
            Some(Value::I64(i as i64 + 1))
        );
        assert_eq!(
            attr(attempt, "db.operation.name"),
            Some(Value::from("users.find"))
        );
    }
    assert_eq!(attempts[0].status, Status::error("server_selection"));
    assert_eq!(
        attr(attempts[0], "error.type"),
        Some(Value::from("server_selection"))
    );
    assert_eq!(attempts[1].status, Status::Ok);

    recorder.reset();
    let err = service.oneshot(find("orders.drop")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    let spans = recorder.get_finished_spans().unwrap();
    let op = spans.iter().find(|s| s.name == "orders.drop").unwrap();
    assert_eq!(op.status, Status::error("config"));
    assert_eq!(attr(op, "error.type"), Some(Value::from("config")));
    assert_eq!(attr(op, "keel.attempts"), Some(Value::I64(1)));
    // No message (which could hold a host) reaches a span: only the class does.
    for span in &spans {
        for kv in &span.attributes {
            assert!(!kv.value.as_str().contains("example"), "{kv:?}");
        }
        assert!(!format!("{:?}", span.status).contains("example"));
    }
}
