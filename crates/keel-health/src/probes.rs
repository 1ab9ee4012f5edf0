//! Kubernetes probes: liveness (the process only), readiness (includes the database) and
//! startup (the first successful check), as plain functions and as axum handlers.
//!
//! | path | probe | 200 when | 503 when |
//! |---|---|---|---|
//! | `/livez` | liveness | the process answers | never: restarting a pod cannot fix a database |
//! | `/readyz` | readiness | started and not `Unhealthy` (`Degraded` still serves) | not started, or `Unhealthy` |
//! | `/startupz` | startup | a check has succeeded once | no check has succeeded yet |
//!
//! ```no_run
//! # async fn run(health: keel_health::HealthHandle) -> std::io::Result<()> {
//! let app = axum::Router::new().merge(keel_health::probes::router(health));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use crate::{HealthHandle, HealthStatus};

/// A probe's verdict: HTTP 200 when `ok`, else 503, with a JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResponse {
    /// Whether the probe passes.
    pub ok: bool,
    /// `{"status": …, …}`: the health status and reasons, never a server message.
    pub body: Value,
}

impl IntoResponse for ProbeResponse {
    fn into_response(self) -> Response {
        let code = if self.ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, Json(self.body)).into_response()
    }
}

/// Liveness: depends only on the process. If this handler runs, the process is alive.
pub fn liveness() -> ProbeResponse {
    ProbeResponse {
        ok: true,
        body: json!({ "status": "alive" }),
    }
}

/// Readiness: started, and not `Unhealthy`.
pub fn readiness(health: &HealthHandle) -> ProbeResponse {
    let report = health.report();
    let ok = report.started && report.status != HealthStatus::Unhealthy;
    ProbeResponse {
        ok,
        body: summary(&report.to_json(), if ok { "ready" } else { "not_ready" }),
    }
}

/// Startup: at least one check has succeeded.
pub fn startup(health: &HealthHandle) -> ProbeResponse {
    let report = health.report();
    ProbeResponse {
        ok: report.started,
        body: summary(
            &report.to_json(),
            if report.started {
                "started"
            } else {
                "starting"
            },
        ),
    }
}

fn summary(report: &Value, verdict: &str) -> Value {
    json!({
        "status": verdict,
        "health": report["status"],
        "reasons": report["reasons"],
        "connection": report["connection"],
    })
}

/// `GET /livez`.
pub async fn livez() -> ProbeResponse {
    liveness()
}

/// `GET /readyz`.
pub async fn readyz(State(health): State<HealthHandle>) -> ProbeResponse {
    readiness(&health)
}

/// `GET /startupz`.
pub async fn startupz(State(health): State<HealthHandle>) -> ProbeResponse {
    startup(&health)
}

/// A router with `/livez`, `/readyz` and `/startupz`, to merge into the application's router.
pub fn router(health: HealthHandle) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/startupz", get(startupz))
        .with_state(health)
}
