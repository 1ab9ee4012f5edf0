//! How a scheduled backup is watched from outside (`keel backup schedule --metrics-addr`,
//! `--alert-webhook`): keel-health's Prometheus recorder and `/metrics` route, and its webhook
//! alert sink, reused as they are. Alerts are always logged too (Keel's monitor always has
//! keel-health's `LogSink`).

use std::net::SocketAddr;

/// The environment variable holding the webhook's bearer token (kept out of the command line,
/// where `ps` would show it).
pub(crate) const WEBHOOK_TOKEN_ENV: &str = "KEEL_ALERT_WEBHOOK_TOKEN";

/// A `/metrics` endpoint being served; stops when dropped.
pub(crate) struct MetricsServer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Installs keel-health's Prometheus recorder (every Keel metric described, the backup's
/// `keel_backup_*` among them) and serves `GET /metrics` on `addr`; returns the bound address.
pub(crate) async fn serve_metrics(addr: SocketAddr) -> Result<(SocketAddr, MetricsServer), String> {
    let handle = keel_health::install_prometheus()
        .map_err(|e| format!("cannot set up the Prometheus metrics: {e}."))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for --metrics-addr: {e}."))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr} for --metrics-addr: {e}."))?;
    let app = keel_health::metrics_router(handle);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("the metrics endpoint stopped: {error}.");
        }
    });
    Ok((bound, MetricsServer { task }))
}

/// keel-health's webhook sink for `url`, with the bearer token from the environment if set.
/// The URL's path is never shown (webhook URLs often embed a secret).
pub(crate) fn webhook(url: &str) -> Result<keel_health::WebhookSink, String> {
    let mut config = keel_health::WebhookConfig::default();
    if let Ok(token) = std::env::var(WEBHOOK_TOKEN_ENV)
        && !token.is_empty()
    {
        config.bearer = Some(keel_core::redact::Secret::new(token));
    }
    keel_health::WebhookSink::new(url, config)
        .map_err(|e| format!("the --alert-webhook URL cannot be used: {e}."))
}
