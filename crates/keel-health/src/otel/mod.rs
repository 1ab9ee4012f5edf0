//! OpenTelemetry (feature `otel`): a span per operation with a child span per attempt, and
//! operation metrics through the global meter.
//!
//! Keel uses only the `opentelemetry` API: the application installs an SDK provider and the
//! exporter it wants (OTLP, stdout…) with `opentelemetry::global::set_tracer_provider` and
//! `set_meter_provider`, **before** building these layers (instruments are created then).
//!
//! Stack them around the retry layer, so one operation span holds its attempts:
//!
//! ```text
//! OtelLayer ─► [HealthGate] ─► [CircuitBreaker] ─► Retry ─► OtelAttemptLayer ─► … ─► MongoService
//! ```
//!
//! Span names and attributes follow OpenTelemetry's database conventions where they apply:
//!
//! | span | name | attributes |
//! |---|---|---|
//! | operation | the operation's name (`users.find_one`), kind `Client` | `db.system.name` = `mongodb`, `db.operation.name`, `keel.operation.kind`, `keel.attempts`, `error.type` (the error class) on failure |
//! | attempt | `keel.attempt`, child of the operation span | `db.operation.name`, `keel.attempt` (1, 2, …), `error.type` on failure |
//!
//! | instrument | kind | attributes |
//! |---|---|---|
//! | `keel.operations` | counter | `db.operation.name`, `outcome` |
//! | `keel.operation.duration` | histogram (s) | `db.operation.name`, `outcome`, `error.type` on failure |

mod attempt;
mod operation;

use std::{
    borrow::Cow,
    future::Future,
    pin::Pin,
    sync::atomic::AtomicU32,
    task::{Context as TaskContext, Poll},
};

use keel_core::{Error, OperationName};
use opentelemetry::{
    Context, KeyValue,
    trace::{SpanRef, Status},
};
use tower_service::Service;

pub use attempt::{OtelAttempt, OtelAttemptFuture, OtelAttemptLayer};
pub use operation::{OtelFuture, OtelLayer, OtelOperation};

/// The instrumentation scope name of Keel's spans and instruments.
pub const SCOPE: &str = "keel";

/// The operation's name as an attribute value: shares the name's string (a `&'static str` or an
/// `Arc<str>`) instead of copying it, since every call sets it on a span and on the metrics.
fn name_value(name: &OperationName) -> opentelemetry::Value {
    match name {
        OperationName::Static(name) => (*name).into(),
        OperationName::Shared(name) => std::sync::Arc::clone(name).into(),
    }
}

/// The operation's name as a span name: free for a `&'static str` name; a span name cannot
/// share an `Arc<str>`, so a name built at run time is copied.
fn span_name(name: &OperationName) -> Cow<'static, str> {
    match name {
        OperationName::Static(name) => Cow::Borrowed(name),
        OperationName::Shared(name) => Cow::Owned(name.to_string()),
    }
}

/// Attempts started under one operation span, shared through the OpenTelemetry `Context`.
#[derive(Debug, Default)]
pub(crate) struct AttemptCounter(pub(crate) AtomicU32);

/// Calls `inner` with `otel_cx` attached: layers below may start their first attempt inside
/// `call`, and must see the span as their parent.
fn call_within<S: Service<R>, R>(inner: &mut S, otel_cx: &Context, request: R) -> S::Future {
    let _guard = otel_cx.clone().attach();
    inner.call(request)
}

/// Polls `inner` with `otel_cx` attached, so whatever runs in the poll sees the span.
fn poll_within<F: Future>(
    inner: Pin<&mut F>,
    otel_cx: &Context,
    cx: &mut TaskContext<'_>,
) -> Poll<F::Output> {
    let _guard = otel_cx.clone().attach();
    inner.poll(cx)
}

/// Sets the span's status from the result and returns the error class on failure, also set as
/// `error.type`: the class, not the message, since messages may name hosts.
fn set_outcome<R>(span: &SpanRef<'_>, result: &Result<R, Error>) -> Option<&'static str> {
    match result {
        Ok(_) => {
            span.set_status(Status::Ok);
            None
        }
        Err(err) => {
            let class = err.class().as_str();
            span.set_attribute(KeyValue::new("error.type", class));
            span.set_status(Status::error(class));
            Some(class)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry::Value;

    use super::*;

    #[test]
    fn a_static_name_is_used_as_it_is() {
        let name = OperationName::from("users.find");
        assert_eq!(name_value(&name), Value::from("users.find"));
        assert!(matches!(span_name(&name), Cow::Borrowed("users.find")));
    }

    #[test]
    fn a_name_built_at_run_time_is_shared_by_the_attribute() {
        let shared: Arc<str> = Arc::from(format!("{}.find", "users"));
        let name = OperationName::Shared(Arc::clone(&shared));
        let value = name_value(&name);
        assert_eq!(value, Value::from("users.find"));
        // The attribute holds one more reference to the same string: nothing was copied.
        assert_eq!(Arc::strong_count(&shared), 3);
        drop(value);
        assert_eq!(Arc::strong_count(&shared), 2);
        assert_eq!(span_name(&name), "users.find");
    }
}
