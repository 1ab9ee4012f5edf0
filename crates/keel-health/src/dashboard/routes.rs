//! The dashboard's routes: the embedded page, the JSON snapshot and the event stream.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::header,
    response::{
        Html, IntoResponse,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use futures_util::stream::{self, Stream, StreamExt};

use crate::dashboard::{Shared, auth, sampler};

/// The page: HTML, CSS and JavaScript in one file, no external resource.
const PAGE: &str = include_str!("page.html");

/// The page may run its own inline script and talk to its own origin, nothing else.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let token = shared.config.token.clone();
    let router = Router::new()
        .route("/", get(page))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(events))
        .with_state(shared);
    match token {
        Some(token) => router.layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        )),
        None => router,
    }
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(PAGE),
    )
}

async fn snapshot(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(sampler::snapshot(&shared, true)),
    )
}

async fn events(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut receiver = shared.latest.subscribe();
    // The current values first, so a new page does not wait for the next sample.
    let first = sampler::snapshot(&shared, false).to_string();
    receiver.mark_unchanged();
    let updates = stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        let data = Arc::clone(&receiver.borrow_and_update());
        Some((data, receiver))
    });
    let all = stream::once(async move { Arc::<str>::from(first) })
        .chain(updates)
        .map(|data| Ok(Event::default().event("update").data(&*data)));
    Sse::new(all).keep_alive(KeepAlive::default())
}
