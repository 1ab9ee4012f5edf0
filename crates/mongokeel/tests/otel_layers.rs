//! keel-health's OpenTelemetry layers, used as they are, at Keel's two named points: a span
//! per operation around the call, a child span per attempt around each attempt. Recorded by a
//! minimal in-test tracer provider (no SDK).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    borrow::Cow,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::SystemTime,
};

use keel_core::Operation;
use keel_health::otel::{OtelAttemptLayer, OtelLayer};
use mongokeel::{Keel, KeelConfig};
use opentelemetry::{
    Context, InstrumentationScope, KeyValue, SpanId, TraceFlags, TraceId, global,
    trace::{
        Span, SpanBuilder, SpanContext, Status, TraceContextExt, TraceState, Tracer, TracerProvider,
    },
};

/// A finished span: name, id, parent.
type Finished = (String, SpanId, Option<SpanId>);

#[derive(Clone, Default, Debug)]
struct Recorder {
    finished: Arc<Mutex<Vec<Finished>>>,
    ids: Arc<AtomicU64>,
}

#[derive(Debug)]
struct RecordingTracer(Recorder);

#[derive(Debug)]
struct RecordingSpan {
    context: SpanContext,
    data: Finished,
    recorder: Recorder,
}

impl TracerProvider for Recorder {
    type Tracer = RecordingTracer;
    fn tracer_with_scope(&self, _scope: InstrumentationScope) -> RecordingTracer {
        RecordingTracer(self.clone())
    }
}

impl Tracer for RecordingTracer {
    type Span = RecordingSpan;
    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> RecordingSpan {
        let id = SpanId::from(self.0.ids.fetch_add(1, Ordering::SeqCst) + 1);
        let parent = parent_cx
            .has_active_span()
            .then(|| parent_cx.span().span_context().span_id());
        let context = SpanContext::new(
            TraceId::from(1u128),
            id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        RecordingSpan {
            context,
            data: (builder.name.to_string(), id, parent),
            recorder: self.0.clone(),
        }
    }
}

impl Span for RecordingSpan {
    fn add_event_with_timestamp<T: Into<Cow<'static, str>>>(
        &mut self,
        _name: T,
        _timestamp: SystemTime,
        _attributes: Vec<KeyValue>,
    ) {
    }
    fn span_context(&self) -> &SpanContext {
        &self.context
    }
    fn is_recording(&self) -> bool {
        true
    }
    fn set_attribute(&mut self, _attribute: KeyValue) {}
    fn set_status(&mut self, _status: Status) {}
    fn update_name<T: Into<Cow<'static, str>>>(&mut self, new_name: T) {
        self.data.0 = new_name.into().to_string();
    }
    fn add_link(&mut self, _span_context: SpanContext, _attributes: Vec<KeyValue>) {}
    fn end_with_timestamp(&mut self, _timestamp: SystemTime) {
        self.recorder
            .finished
            .lock()
            .unwrap()
            .push(self.data.clone());
    }
}

#[tokio::test]
async fn one_span_per_operation_with_a_child_span_per_attempt() {
    let recorder = Recorder::default();
    global::set_tracer_provider(recorder.clone());
    let server = keel_testkit::TestServer::start().await.unwrap();
    let keel = Keel::builder(KeelConfig::for_uri(server.uri()).unwrap())
        .layer_around_call(OtelLayer::new())
        .layer_around_attempt(OtelAttemptLayer::new())
        .build()
        .await
        .unwrap();
    // Fails its first attempt with a network error (retryable), then answers.
    let attempts = Arc::new(AtomicU32::new(0));
    let flaky = Operation::read("users.find", move |_client| {
        let n = attempts.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into())
            } else {
                Ok(n)
            }
        }
    });
    assert_eq!(keel.run(flaky).await.unwrap(), 1);

    let spans = recorder.finished.lock().unwrap().clone();
    let operation = spans
        .iter()
        .find(|(name, ..)| name == "users.find")
        .expect("an operation span");
    let children: Vec<_> = spans
        .iter()
        .filter(|(name, _, parent)| name == "keel.attempt" && *parent == Some(operation.1))
        .collect();
    assert_eq!(children.len(), 2, "one per attempt: {spans:?}");
    assert_eq!(operation.2, None, "the operation span is a root");
    keel.shutdown().await;
}
