//! `OtelAttemptLayer`: a child span per attempt, below the retry layer.

use std::{
    future::Future,
    pin::Pin,
    sync::atomic::Ordering,
    task::{Context as TaskContext, Poll},
};

use keel_core::{Error, Operation};
use opentelemetry::{
    Context, KeyValue, global,
    trace::{TraceContextExt, Tracer},
};
use tower_layer::Layer;
use tower_service::Service;

use super::{AttemptCounter, SCOPE, call_within, name_value, poll_within, set_outcome};

/// Starts a `keel.attempt` span for each attempt, as a child of the current operation span
/// (from [`OtelLayer`](super::OtelLayer) above the retry layer), numbering the attempts.
#[derive(Clone, Copy, Debug, Default)]
pub struct OtelAttemptLayer;

impl OtelAttemptLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for OtelAttemptLayer {
    type Service = OtelAttempt<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OtelAttempt { inner }
    }
}

/// The service made by [`OtelAttemptLayer`].
#[derive(Clone, Debug)]
pub struct OtelAttempt<S> {
    inner: S,
}

impl<S> OtelAttempt<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T> Service<Operation<T>> for OtelAttempt<S>
where
    S: Service<Operation<T>, Error = Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = OtelAttemptFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let parent = Context::current();
        let attempt = parent
            .get::<AttemptCounter>()
            .map_or(1, |c| c.0.fetch_add(1, Ordering::Relaxed) + 1);
        let tracer = global::tracer(SCOPE);
        let span = tracer
            .span_builder("keel.attempt")
            .with_attributes([
                KeyValue::new("db.operation.name", name_value(operation.label())),
                KeyValue::new("keel.attempt", i64::from(attempt)),
            ])
            .start_with_context(&tracer, &parent);
        let otel_cx = parent.with_span(span);
        let inner = call_within(&mut self.inner, &otel_cx, operation);
        OtelAttemptFuture { inner, otel_cx }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`OtelAttempt`].
    #[derive(Debug)]
    pub struct OtelAttemptFuture<F> {
        #[pin]
        inner: F,
        otel_cx: Context,
    }
}

impl<F, R> Future for OtelAttemptFuture<F>
where
    F: Future<Output = Result<R, Error>>,
{
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(poll_within(this.inner, this.otel_cx, cx));
        let span = this.otel_cx.span();
        set_outcome(&span, &result);
        span.end();
        Poll::Ready(result)
    }
}
