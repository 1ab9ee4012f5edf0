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

use std::sync::atomic::AtomicU32;

pub use attempt::{OtelAttempt, OtelAttemptFuture, OtelAttemptLayer};
pub use operation::{OtelFuture, OtelLayer, OtelOperation};

/// The instrumentation scope name of Keel's spans and instruments.
pub const SCOPE: &str = "keel";

/// Attempts started under one operation span, shared through the OpenTelemetry `Context`.
#[derive(Debug, Default)]
pub(crate) struct AttemptCounter(pub(crate) AtomicU32);
