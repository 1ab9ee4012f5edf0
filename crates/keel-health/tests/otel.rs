//! OpenTelemetry spans (feature `otel`): one span per operation, a child span per attempt below
//! the retry layer, attributes and statuses; recorded by a minimal in-test tracer provider.
//! Run with `cargo test -p keel-health --features otel --test otel`.

#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    borrow::Cow,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use keel_core::{Error, ErrorClass, Operation};
use keel_health::otel::{OtelAttemptLayer, OtelLayer};
use keel_retry::{RetryConfig, RetryIf, RetryLayer};
use opentelemetry::{
    Context, InstrumentationScope, KeyValue, SpanId, TraceFlags, TraceId, Value, global,
    trace::{
        Span, SpanBuilder, SpanContext, Status, TraceContextExt, TraceState, Tracer, TracerProvider,
    },
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

#[derive(Debug, Clone)]
struct Finished {
    name: String,
    trace: TraceId,
    id: SpanId,
    parent: Option<SpanId>,
    attributes: Vec<KeyValue>,
    status: Status,
}

impl Finished {
    fn attr(&self, key: &str) -> Option<Value> {
        self.attributes
            .iter()
            .rev()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }
}

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
        let id = self.0.ids.fetch_add(1, Ordering::SeqCst) + 1;
        let parent = parent_cx
            .has_active_span()
            .then(|| parent_cx.span().span_context().clone());
        let trace = parent
            .as_ref()
            .map_or(TraceId::from(u128::from(id)), SpanContext::trace_id);
        let context = SpanContext::new(
            trace,
            SpanId::from(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        RecordingSpan {
            data: Finished {
                name: builder.name.to_string(),
                trace,
                id: SpanId::from(id),
                parent: parent.map(|p| p.span_id()),
                attributes: builder.attributes.unwrap_or_default(),
                status: Status::Unset,
            },
            context,
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
    fn set_attribute(&mut self, attribute: KeyValue) {
        self.data.attributes.push(attribute);
    }
    fn set_status(&mut self, status: Status) {
        self.data.status = status;
    }
    fn update_name<T: Into<Cow<'static, str>>>(&mut self, new_name: T) {
        self.data.name = new_name.into().to_string();
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

fn find(name: &'static str) -> Operation<u32> {
    Operation::read(name, |_client: mongodb::Client| async { Ok(1u32) })
}

#[tokio::test(start_paused = true)]
async fn one_span_per_operation_with_a_child_per_attempt() {
    let recorder = Recorder::default();
    global::set_tracer_provider(recorder.clone());

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
    let spans = recorder.finished.lock().unwrap().clone();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let op = spans.iter().find(|s| s.name == "users.find").unwrap();
    assert_eq!(op.parent, None);
    assert_eq!(op.attr("db.system.name"), Some(Value::from("mongodb")));
    assert_eq!(op.attr("keel.operation.kind"), Some(Value::from("read")));
    assert_eq!(op.attr("keel.attempts"), Some(Value::I64(2)));
    assert_eq!(op.status, Status::Ok);
    let attempts: Vec<&Finished> = spans.iter().filter(|s| s.name == "keel.attempt").collect();
    assert_eq!(attempts.len(), 2);
    for (i, attempt) in attempts.iter().enumerate() {
        assert_eq!(
            attempt.parent,
            Some(op.id),
            "attempt {i} is a child of the operation"
        );
        assert_eq!(attempt.trace, op.trace);
        assert_eq!(attempt.attr("keel.attempt"), Some(Value::I64(i as i64 + 1)));
        assert_eq!(
            attempt.attr("db.operation.name"),
            Some(Value::from("users.find"))
        );
    }
    assert_eq!(attempts[0].status, Status::error("server_selection"));
    assert_eq!(
        attempts[0].attr("error.type"),
        Some(Value::from("server_selection"))
    );
    assert_eq!(attempts[1].status, Status::Ok);

    recorder.finished.lock().unwrap().clear();
    let err = service.oneshot(find("orders.drop")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    let spans = recorder.finished.lock().unwrap().clone();
    let op = spans.iter().find(|s| s.name == "orders.drop").unwrap();
    assert_eq!(op.status, Status::error("config"));
    assert_eq!(op.attr("error.type"), Some(Value::from("config")));
    assert_eq!(op.attr("keel.attempts"), Some(Value::I64(1)));
    // No message (which could hold a host) reaches a span: only the class does.
    for span in &spans {
        for kv in &span.attributes {
            assert!(!kv.value.as_str().contains("example"), "{kv:?}");
        }
        assert!(!format!("{:?}", span.status).contains("example"));
    }
}
