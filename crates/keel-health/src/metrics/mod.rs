//! Metrics: names, the catalog of every Keel metric, operation metrics and Prometheus export.

mod catalog;
pub mod names;
mod operation;
mod operation_keys;
mod prometheus;
mod stats;

pub use catalog::{CATALOG, MetricDoc, MetricKind, catalog_markdown, describe_all};
pub use operation::{OperationMetrics, OperationMetricsFuture, OperationMetricsLayer};
pub use prometheus::{
    PrometheusError, SECONDS_BUCKETS, install_prometheus, metrics_router, prometheus_builder,
};
pub use stats::{LatencySummary, OperationSnapshot, OperationStats};
