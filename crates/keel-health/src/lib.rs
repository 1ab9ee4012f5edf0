//! Health checks, alerts, automatic recovery, a health gate, Kubernetes probes, metrics export
//! and an admin dashboard for a Keel MongoDB client.
//!
//! * [`HealthMonitor`] pings on an interval (with jitter), records latency, and combines it with
//!   pool-core's [`ConnectionState`](keel_pool_core::ConnectionState) and the circuit breaker's
//!   state into a [`HealthReport`]: [`HealthStatus`] `Healthy / Degraded / Unhealthy` with
//!   [`Reason`]s, published on a `watch` ([`HealthHandle`]).
//! * Thresholds (p99 latency, error rate, pool saturation, failed checks in a row) raise and
//!   clear [alerts](AlertEvent) with [hysteresis](Hysteresis); [sinks](AlertSink) deliver them
//!   ([`LogSink`], [`ChannelSink`], [`WebhookSink`]).
//! * [Components](ComponentReporter): health checks that live in other crates (a change-stream
//!   consumer, a sync queue, a backup schedule) report into the same report, dashboard and
//!   alert sinks with [`HealthHandle::component`].
//! * Recovery: after N failed checks with no driver progress, the monitor asks pool-core to
//!   `reset()` the client, never more often than a minimum interval.
//! * [`HealthGateLayer`] fails requests fast (or holds them briefly) while `Unhealthy`.
//! * [`probes`]: liveness, readiness and startup checks with axum handlers (`http` feature).
//! * Metrics: [`OperationMetricsLayer`], the [catalog](CATALOG) of every Keel metric, and a
//!   Prometheus recorder ([`install_prometheus`]) and endpoint ([`metrics_router`], `http`
//!   feature); OpenTelemetry behind the `otel` feature.
//! * [`dashboard`]: a live admin page with history charts, over server-sent events (`http`
//!   feature).
//!
//! The `http` feature (on by default) is everything that pulls axum: without it the monitor,
//! the gate, alerts and metrics build without an HTTP server.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use keel_health::{HealthConfig, HealthGateLayer, HealthMonitor, LogSink};
//! use keel_pool_core::{ManagedClient, ManagedSettings, MongoService};
//! use tower::ServiceBuilder;
//!
//! let options = mongodb::options::ClientOptions::parse("mongodb://127.0.0.1:27017").await?;
//! let client = ManagedClient::connect_with(options, ManagedSettings::default()).await?;
//! let monitor = HealthMonitor::builder(client.clone(), HealthConfig::default())
//!     .sink(LogSink)
//!     .spawn()?;
//! let health = monitor.handle();
//! let service = ServiceBuilder::new()
//!     .layer(HealthGateLayer::new(&health))
//!     .service(MongoService::new(client));
//! # Ok(()) }
//! ```

mod alert;
mod component;
mod config;
#[cfg(feature = "http")]
pub mod dashboard;
mod error;
mod gate;
pub mod metrics;
mod monitor;
#[cfg(feature = "otel")]
pub mod otel;
#[cfg(feature = "http")]
pub mod probes;
mod status;
mod target;

pub use alert::{
    AlertEvent, AlertKind, AlertSink, ChannelSink, Hysteresis, LogSink, SinkError, Transition,
    WebhookConfig, WebhookSink,
};
pub use component::{ComponentHealth, ComponentReporter};
pub use config::{HealthConfig, RecoveryConfig, SettingError, Threshold};
pub use error::{ConfigError, DashboardError, WebhookError};
pub use gate::{GateError, GateMode, HealthGate, HealthGateLayer, ResponseFuture};

#[cfg(feature = "http")]
pub use metrics::metrics_router;
pub use metrics::{
    CATALOG, LatencySummary, OperationMetricsLayer, OperationStats, PrometheusError,
    install_prometheus,
};
pub use monitor::{HealthHandle, HealthMonitor, HealthMonitorBuilder};
pub use status::{CheckResult, HealthReport, HealthStatus, Reason};
pub use target::HealthTarget;
