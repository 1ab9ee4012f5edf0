//! keel-health's OpenTelemetry layers, used as they are, at Keel's two named points: a span
//! per operation around the call, a child span per attempt around each attempt. Recorded by the
//! OpenTelemetry SDK's in-memory span exporter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keel_health::otel::{OtelAttemptLayer, OtelLayer};
use mongokeel::{Keel, KeelConfig};
use opentelemetry::{SpanId, global};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use support::answers_after_one_failure;

/// Spans as the OpenTelemetry SDK finishes them, exported synchronously into memory.
fn record_spans() -> InMemorySpanExporter {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    global::set_tracer_provider(provider);
    exporter
}

#[tokio::test]
async fn one_span_per_operation_with_a_child_span_per_attempt() {
    let recorder = record_spans();
    let server = keel_testkit::TestServer::start().await.unwrap();
    let keel = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
        .layer_around_call(OtelLayer::new())
        .layer_around_attempt(OtelAttemptLayer::new())
        .build()
        .await
        .unwrap();
    answers_after_one_failure(&keel, "users.find").await;

    let spans = recorder.get_finished_spans().unwrap();
    let operation = spans
        .iter()
        .find(|span| span.name == "users.find")
        .expect("an operation span");
    let operation_id = operation.span_context.span_id();
    let children = spans
        .iter()
        .filter(|span| span.name == "keel.attempt" && span.parent_span_id == operation_id)
        .count();
    assert_eq!(children, 2, "one per attempt: {spans:?}");
    assert_eq!(
        operation.parent_span_id,
        SpanId::INVALID,
        "the operation span is a root"
    );
    keel.shutdown().await;
}
