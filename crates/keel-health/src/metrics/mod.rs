//! Metrics: names, the catalog of every Keel metric, operation metrics and Prometheus export.

mod catalog;
pub mod names;
mod operation;
mod operation_keys;
mod prometheus;
mod stats;

pub use catalog::{CATALOG, MetricDoc, MetricKind, catalog_markdown, describe_all};
pub use operation::{OperationMetrics, OperationMetricsFuture, OperationMetricsLayer};
#[cfg(feature = "http")]
pub use prometheus::metrics_router;
pub use prometheus::{PrometheusError, SECONDS_BUCKETS, install_prometheus, prometheus_builder};
pub use stats::{LatencySummary, OperationSnapshot, OperationStats};
