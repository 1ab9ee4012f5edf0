//! Request queuing for high load: at most `max_in_flight` requests reach the handlers (and so
//! the database) at once; one more is refused at once with 429, `Retry-After` and a
//! problem-details body, instead of queuing behind the pool until its deadline. tower's
//! `GlobalConcurrencyLimit` (one limit shared by every route) does the counting and `LoadShed`
//! turns "no permit free" into an immediate refusal.

use std::time::Duration;

use axum::{
    BoxError, Router, error_handling::HandleErrorLayer, extract::State, response::IntoResponse,
    response::Response, routing::get,
};
use mongodb::bson::{Document, doc};
use mongokeel::{
    Collection, Error, Keel,
    http::{ErrorResponse, HttpAnswer, Json, Path},
};
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer, load_shed::error::Overloaded};

/// How long a refused client is told to wait.
const SHED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// `GET /items/{id}` over `keel_example.items`, with at most `max_in_flight` requests served
/// at once and the rest refused fast.
pub(crate) fn router(keel: &Keel, max_in_flight: usize) -> Router {
    Router::new()
        .route("/items/{id}", get(read))
        .with_state(keel.collection::<Document>("keel_example", "items"))
        .layer(
            ServiceBuilder::new()
                // Outermost: the shed error becomes an HTTP answer (axum needs infallible
                // services).
                .layer(HandleErrorLayer::new(refuse))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(max_in_flight)),
        )
}

/// A refused request: Keel's `Overloaded` answer (429, `Retry-After`), so a client sees the
/// same problem whether the service or the database's pool shed it.
async fn refuse(error: BoxError) -> HttpAnswer {
    if error.is::<Overloaded>() {
        HttpAnswer::from_error(&Error::overloaded(
            "concurrency limit reached: request shed",
            Some(SHED_RETRY_AFTER),
        ))
    } else {
        HttpAnswer::rejected(500, "An unexpected error occurred.")
    }
}

/// Reads an item: 200, or 404 as problem details.
async fn read(
    State(items): State<Collection<Document>>,
    Path(id): Path<i64>,
) -> Result<Response, ErrorResponse> {
    Ok(match items.find_one(doc! { "_id": id }).await? {
        Some(item) => Json(item).into_response(),
        None => HttpAnswer::rejected(404, "No item has this id.").into_response(),
    })
}
