//! The Prometheus endpoint: a recorder with Keel's histogram buckets and, with the `http`
//! feature, an axum route.

#[cfg(feature = "http")]
use axum::{Router, http::header, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::metrics::describe_all;

/// Histogram buckets (seconds) for every `*_seconds` metric: from half a millisecond (a local
/// ping) to 30 s (the driver's default server selection timeout).
pub const SECONDS_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The Prometheus recorder could not be built or installed.
#[derive(Debug, thiserror::Error)]
#[error("Prometheus recorder: {0}")]
pub struct PrometheusError(String);

/// A `PrometheusBuilder` with Keel's buckets for `*_seconds` histograms. Build a recorder from
/// it to combine with other recorders, or use [`install_prometheus`].
pub fn prometheus_builder() -> Result<PrometheusBuilder, PrometheusError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
        .map_err(|e| PrometheusError(e.to_string()))
}

/// Installs a Prometheus recorder as the global `metrics` recorder, registers every Keel
/// metric's description, and returns the handle to render from.
///
/// Fails if another global recorder is already installed.
///
/// ```no_run
/// # #[cfg(feature = "http")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let handle = keel_health::install_prometheus()?;
/// let app = axum::Router::new().merge(keel_health::metrics_router(handle));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9100").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
pub fn install_prometheus() -> Result<PrometheusHandle, PrometheusError> {
    let handle = prometheus_builder()?
        .install_recorder()
        .map_err(|e| PrometheusError(e.to_string()))?;
    describe_all();
    Ok(handle)
}

/// `GET /metrics` in the Prometheus text format.
#[cfg(feature = "http")]
pub fn metrics_router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                // Upkeep drains histogram samples; running it per scrape keeps memory bounded
                // without a background task.
                handle.run_upkeep();
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}
