//! The axum service's routes: a users API whose handlers call Keel and answer every failure
//! with `mongokeel::http` (503 + `Retry-After` while the database is unavailable, 429 when
//! overloaded, 409 for a duplicate, problem-details JSON for every error, malformed bodies
//! included). `tests/axum_service.rs` runs this router through a database outage.

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mongodb::bson::doc;
use mongokeel::{
    Collection, Keel,
    http::{ErrorResponse, HttpAnswer, Json, Path},
};
use serde::{Deserialize, Serialize};

/// A stored user; `id` is the document's `_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    /// The user's id, chosen by the client.
    #[serde(rename = "_id", alias = "id")]
    id: i64,
    /// The user's name.
    name: String,
}

/// `POST /users` and `GET /users/{id}` over `keel_example.users`.
pub(crate) fn router(keel: &Keel) -> Router {
    Router::new()
        .route("/users", post(create))
        .route("/users/{id}", get(read))
        .with_state(keel.collection::<User>("keel_example", "users"))
}

/// Inserts a user: 201, or 409 when the id is taken.
async fn create(
    State(users): State<Collection<User>>,
    Json(user): Json<User>,
) -> Result<(StatusCode, Json<User>), ErrorResponse> {
    users.insert_one(user.clone()).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Reads a user: 200, or 404 as problem details when there is none.
async fn read(
    State(users): State<Collection<User>>,
    Path(id): Path<i64>,
) -> Result<Response, ErrorResponse> {
    Ok(match users.find_one(doc! { "_id": id }).await? {
        Some(user) => Json(user).into_response(),
        None => HttpAnswer::rejected(404, "No user has this id.").into_response(),
    })
}
