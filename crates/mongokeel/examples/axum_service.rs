//! An axum service whose handlers use Keel's façade and turn Keel errors into HTTP answers:
//! 503 with `Retry-After` while the database is unavailable, 429 when overloaded, 4xx for
//! invalid input — and never an internal message in a response body.
//!
//! ```sh
//! cargo run -p mongokeel --example axum_service        # embedded testkit, port 3000
//! curl -X POST localhost:3000/users -H 'content-type: application/json' -d '{"id":1,"name":"Ada"}'
//! curl localhost:3000/users/1
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mongodb::bson::doc;
use mongokeel::{Collection, Error, ErrorClass, Keel, KeelConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    #[serde(rename = "_id", alias = "id")]
    id: i64,
    name: String,
}

/// A Keel error as an HTTP response: the status says what the client may do next, the body
/// carries only the user-safe message; the full (redacted) detail goes to the log.
struct ApiError(Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = match err.class() {
            ErrorClass::InvalidInput => {
                if err.is_duplicate_key() {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::BAD_REQUEST
                }
            }
            ErrorClass::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            class if class.is_infrastructure() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing_free_log(&err);
        }
        let mut response = (
            status,
            Json(serde_json::json!({ "error": err.user_message() })),
        )
            .into_response();
        let wait = err.retry_after().or_else(|| {
            (status == StatusCode::SERVICE_UNAVAILABLE).then(|| std::time::Duration::from_secs(1))
        });
        if let Some(wait) = wait.filter(|_| status != StatusCode::BAD_REQUEST) {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

/// Logs the redacted detail (a real service would use `tracing`).
fn tracing_free_log(err: &Error) {
    eprintln!("database call failed: {err}");
}

async fn create(
    State(users): State<Collection<User>>,
    Json(user): Json<User>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    users.insert_one(user.clone()).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn read(
    State(users): State<Collection<User>>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    Ok(match users.find_one(doc! { "_id": id }).await? {
        Some(user) => Json(user).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_server, uri) = match std::env::var("KEEL_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let server = keel_testkit::TestServer::start().await?;
            let uri = server.uri();
            (Some(server), uri)
        }
    };
    let keel = Keel::builder(KeelConfig::development(uri)?).build().await?;
    let app = Router::new()
        .route("/users", post(create))
        .route("/users/{id}", get(read))
        .with_state(keel.collection::<User>("keel_example", "users"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    keel.shutdown().await;
    Ok(())
}
