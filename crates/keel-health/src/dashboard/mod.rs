//! The admin dashboard: a live page of connection state, health, breaker, pool utilisation,
//! operation rates, error classes, latency percentiles, history charts and alerts, updated over
//! server-sent events.
//!
//! Self-contained: one embedded HTML page with inline JavaScript and SVG charts; no CDN, no
//! build step. Serve it yourself ([`Dashboard::serve`], bound to `127.0.0.1:9400` by default) or
//! mount [`Dashboard::router`] in your axum app. Bound anywhere but loopback, a bearer token is
//! required ([`DashboardConfig::token`]); with a token, every route (page included) asks for it
//! as `Authorization: Bearer …` or `?token=…` (the page passes it on to its API calls).
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /api/snapshot` | JSON: current values, alerts, error classes and the history ring |
//! | `GET /api/events` | server-sent events: one `update` per sample (every second) |
//!
//! ```no_run
//! # async fn run(health: keel_health::HealthHandle) -> Result<(), keel_health::DashboardError> {
//! use keel_health::dashboard::{Dashboard, DashboardConfig};
//! let dashboard = Dashboard::new(health, DashboardConfig::default());
//! let serving = dashboard.serve().await?;
//! println!("dashboard at {}", serving.url());
//! # Ok(()) }
//! ```

mod auth;
mod config;
mod history;
mod routes;
mod sampler;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
};

use axum::Router;
use serde_json::Value;
use tokio::{sync::watch, task::JoinHandle};

pub use config::DashboardConfig;
pub use history::Sample;

use crate::{DashboardError, HealthHandle};

/// The dashboard: samples health once per resolution into a ring buffer and serves the page.
///
/// Cheap to clone. Sampling stops when the last clone (and every router made from it) is gone.
#[derive(Clone)]
pub struct Dashboard {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("bind", &self.shared.config.bind)
            .field("token", &self.shared.config.token.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    pub(crate) health: HealthHandle,
    pub(crate) config: DashboardConfig,
    pub(crate) history: Mutex<history::History>,
    /// The latest update (JSON text), what `/api/events` streams.
    pub(crate) latest: watch::Sender<Arc<str>>,
    sampler: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = self
            .sampler
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl Dashboard {
    /// A dashboard of `health`; starts sampling at once. Must be called within a Tokio runtime.
    pub fn new(health: HealthHandle, config: DashboardConfig) -> Self {
        let (latest, _) = watch::channel(Arc::from("{}"));
        let shared = Arc::new(Shared {
            history: Mutex::new(history::History::new(config.history)),
            health,
            config,
            latest,
            sampler: Mutex::new(None),
        });
        let task = tokio::spawn(sampler::run(Arc::downgrade(&shared)));
        *shared
            .sampler
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task);
        Self { shared }
    }

    /// The current values, alerts and error classes, plus the history when `with_history`.
    pub fn snapshot(&self, with_history: bool) -> Value {
        sampler::snapshot(&self.shared, with_history)
    }

    /// The routes (page, snapshot, events), to mount in an axum app (`Router::nest`) or serve.
    /// With a token configured, every route requires it.
    ///
    /// Mounting it yourself, *you* choose the address: keep it on loopback or set a token.
    pub fn router(&self) -> Router {
        routes::router(Arc::clone(&self.shared))
    }

    /// Binds `config.bind` and serves the dashboard until [`ServingDashboard::shutdown`] (or
    /// drop).
    ///
    /// Refused with [`DashboardError::TokenRequired`] when the address is not loopback and no
    /// token is set, and [`DashboardError::WeakToken`] for a token under 16 characters.
    pub async fn serve(&self) -> Result<ServingDashboard, DashboardError> {
        let config = &self.shared.config;
        config.check()?;
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| DashboardError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DashboardError::Bind {
                addr: config.bind,
                source,
            })?;
        let app = self.router();
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(target: "keel_health", error = %err, "keel dashboard stopped");
            }
        });
        tracing::info!(target: "keel_health", %addr, "keel dashboard listening");
        Ok(ServingDashboard { addr, task })
    }
}

/// A dashboard being served. Dropping it stops the server.
#[derive(Debug)]
#[must_use = "the dashboard stops when this is dropped"]
pub struct ServingDashboard {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ServingDashboard {
    /// The address bound (the real port when the configuration said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops serving.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for ServingDashboard {
    fn drop(&mut self) {
        self.task.abort();
    }
}
