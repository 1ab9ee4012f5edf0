//! `mongokeel::http` in axum: Keel errors as responses, and malformed requests answered in the
//! same problem-details format by the `Json` and `Path` extractors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mongokeel::http::{ErrorResponse, Json, Path};
use serde_json::Value;
use tower::ServiceExt;

async fn body(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_keel_error_becomes_a_problem_response() {
    let response =
        ErrorResponse::from(keel_core::Error::circuit_open(Duration::from_secs(5))).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let json = body(response).await;
    assert_eq!(json["status"], 503);
    assert_eq!(json["title"], "Service Unavailable");
    assert_eq!(json["class"], "unavailable");
    assert_eq!(
        json["detail"],
        "The database is temporarily unavailable. Please try again shortly."
    );
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Item {
    id: i64,
}

fn app() -> Router {
    Router::new()
        .route(
            "/items",
            post(|Json(item): Json<Item>| async move { Json(item) }),
        )
        .route(
            "/items/{id}",
            get(|Path(id): Path<i64>| async move { Json(Item { id }) }),
        )
}

async fn call(request: Request<Body>) -> Response {
    app().oneshot(request).await.unwrap()
}

fn post_json(content_type: &str, body: &'static str) -> Request<Body> {
    Request::post("/items")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap()
}

/// Asserts a problem-details rejection with `status`, no class and no `Retry-After`.
async fn rejected(response: Response, status: u16, title: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert!(response.headers().get(header::RETRY_AFTER).is_none());
    let json = body(response).await;
    assert_eq!(json["status"], status);
    assert_eq!(json["type"], "about:blank");
    assert_eq!(json["title"], title);
    assert!(!json["detail"].as_str().unwrap().is_empty());
    assert!(json.get("class").is_none(), "{json}");
}

#[tokio::test]
async fn a_well_formed_body_passes_through() {
    let response = call(post_json("application/json", r#"{"id":7}"#)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await["id"], 7);
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let response = call(post_json("application/json", r#"{"id":"#)).await;
    rejected(response, 400, "Bad Request").await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_422_problem() {
    let response = call(post_json("application/json", r#"{"id":"seven"}"#)).await;
    rejected(response, 422, "Unprocessable Content").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_problem() {
    let response = call(post_json("text/plain", r#"{"id":7}"#)).await;
    rejected(response, 415, "Unsupported Media Type").await;
}

#[tokio::test]
async fn a_path_parameter_that_does_not_parse_is_a_400_problem() {
    let request = Request::get("/items/seven").body(Body::empty()).unwrap();
    rejected(call(request).await, 400, "Bad Request").await;
}

/// The handler the root README shows, kept compiling here.
async fn readme_read(
    axum::extract::State(users): axum::extract::State<
        mongokeel::Collection<mongodb::bson::Document>,
    >,
    Path(id): Path<i64>,
) -> Result<Json<mongodb::bson::Document>, mongokeel::http::HttpAnswer> {
    match users
        .find_one(mongodb::bson::doc! { "_id": id })
        .await
        .map_err(|e| mongokeel::http::HttpAnswer::from_error(&e))?
    {
        Some(user) => Ok(Json(user)),
        None => Err(mongokeel::http::HttpAnswer::rejected(
            404,
            "No user has this id.",
        )),
    }
}

#[tokio::test]
async fn the_readme_handler_routes() {
    let router: Router<mongokeel::Collection<mongodb::bson::Document>> =
        Router::new().route("/users/{id}", get(readme_read));
    assert!(router.has_routes());
}
