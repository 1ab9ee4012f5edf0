//! `OtelLayer`: one span and the operation metrics per operation.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context as TaskContext, Poll},
};

use keel_core::{Error, Operation, OperationName};
use opentelemetry::{
    Context, KeyValue, global,
    metrics::{Counter, Histogram},
    trace::{SpanKind, TraceContextExt, Tracer},
};
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use super::{AttemptCounter, SCOPE, call_within, name_value, poll_within, set_outcome, span_name};

#[derive(Debug)]
struct Instruments {
    operations: Counter<u64>,
    duration: Histogram<f64>,
}

/// Starts a client span per operation (see the [module docs](crate::otel)) and records
/// `keel.operations` and `keel.operation.duration`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use keel_core::{Error, Operation};
/// use keel_health::otel::OtelLayer;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// // With no provider installed the spans are no-ops; the service works the same.
/// let service = ServiceBuilder::new()
///     .layer(OtelLayer::new())
///     .service(service_fn(|_op: Operation<u8>| async { Ok::<_, Error>(1) }));
/// let op = Operation::read("users.count", |_c: mongodb::Client| async { Ok(0u8) });
/// assert_eq!(service.oneshot(op).await.unwrap(), 1);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct OtelLayer {
    instruments: Arc<Instruments>,
}

impl Default for OtelLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl OtelLayer {
    /// Creates the instruments from the global meter provider (install it first).
    pub fn new() -> Self {
        let meter = global::meter(SCOPE);
        Self {
            instruments: Arc::new(Instruments {
                operations: meter
                    .u64_counter("keel.operations")
                    .with_description("operations finished")
                    .build(),
                duration: meter
                    .f64_histogram("keel.operation.duration")
                    .with_unit("s")
                    .with_description("operation latency, all attempts included")
                    .build(),
            }),
        }
    }
}

impl<S> Layer<S> for OtelLayer {
    type Service = OtelOperation<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OtelOperation {
            inner,
            instruments: Arc::clone(&self.instruments),
        }
    }
}

/// The service made by [`OtelLayer`].
#[derive(Clone, Debug)]
pub struct OtelOperation<S> {
    inner: S,
    instruments: Arc<Instruments>,
}

impl<S> OtelOperation<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T> Service<Operation<T>> for OtelOperation<S>
where
    S: Service<Operation<T>, Error = Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = OtelFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let tracer = global::tracer(SCOPE);
        let name = operation.label().clone();
        let span = tracer
            .span_builder(span_name(&name))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("db.system.name", "mongodb"),
                KeyValue::new("db.operation.name", name_value(&name)),
                KeyValue::new("keel.operation.kind", operation.kind().as_str()),
            ])
            .start(&tracer);
        let otel_cx = Context::current_with_span(span).with_value(AttemptCounter::default());
        let inner = call_within(&mut self.inner, &otel_cx, operation);
        OtelFuture {
            inner,
            otel_cx,
            name,
            start: Instant::now(),
            instruments: Arc::clone(&self.instruments),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`OtelOperation`]: runs the inner future inside the operation's context.
    #[derive(Debug)]
    pub struct OtelFuture<F> {
        #[pin]
        inner: F,
        otel_cx: Context,
        name: OperationName,
        start: Instant,
        instruments: Arc<Instruments>,
    }
}

impl<F, R> Future for OtelFuture<F>
where
    F: Future<Output = Result<R, Error>>,
{
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(poll_within(this.inner, this.otel_cx, cx));
        let span = this.otel_cx.span();
        let attempts = this
            .otel_cx
            .get::<AttemptCounter>()
            .map_or(0, |c| c.0.load(Ordering::Relaxed));
        span.set_attribute(KeyValue::new("keel.attempts", i64::from(attempts)));
        let mut attributes = vec![KeyValue::new("db.operation.name", name_value(this.name))];
        match set_outcome(&span, &result) {
            None => attributes.push(KeyValue::new("outcome", "success")),
            Some(class) => {
                attributes.push(KeyValue::new("outcome", "error"));
                attributes.push(KeyValue::new("error.type", class));
            }
        }
        span.end();
        this.instruments.operations.add(1, &attributes);
        this.instruments
            .duration
            .record(this.start.elapsed().as_secs_f64(), &attributes);
        Poll::Ready(result)
    }
}
