//! The axum side of [`HttpAnswer`](super::HttpAnswer): Keel errors as axum responses, and
//! `Json`/`Path` extractors whose rejections answer in the same problem-details format.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use keel_core::Error;
use serde::Serialize;

use super::{HttpAnswer, PROBLEM_JSON};

/// A Keel error as an axum response, by the mapping of [`HttpAnswer::from_error`]. Return it
/// from handlers (`Result<_, ErrorResponse>`; `?` converts a [`keel_core::Error`]). A 500 is
/// logged at `error` and other 5xx at `debug` with the full, redacted detail, which the body
/// never carries.
///
/// ```
/// use axum::response::IntoResponse;
/// use mongokeel::http::ErrorResponse;
///
/// let response = ErrorResponse::from(keel_core::Error::shutting_down()).into_response();
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "1");
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// ```
#[derive(Debug)]
pub struct ErrorResponse(pub Error);

impl From<Error> for ErrorResponse {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let answer = HttpAnswer::from_error(&self.0);
        if answer.status == 500 {
            tracing::error!(error = %self.0, status = answer.status, "database call failed");
        } else if answer.status >= 500 {
            tracing::debug!(error = %self.0, status = answer.status, "database call failed");
        }
        answer.into_response()
    }
}

impl IntoResponse for HttpAnswer {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.to_json()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(value) = self
            .retry_after_header()
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<JsonRejection> for HttpAnswer {
    /// axum's own status (400 malformed JSON, 415 wrong content type, 422 valid JSON of the
    /// wrong shape, 413 too large) with its description of what is wrong with the body.
    fn from(rejection: JsonRejection) -> Self {
        HttpAnswer::rejected(rejection.status().as_u16(), rejection.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for HttpAnswer {
    /// axum's own status (400 for a parameter that does not parse) and description.
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        HttpAnswer::rejected(rejection.status().as_u16(), rejection.body_text())
    }
}

/// axum's [`Json`](axum::Json), whose rejection is a problem-details [`HttpAnswer`] instead of
/// plain text; as a response, plain JSON.
///
/// ```
/// use mongokeel::http::{ErrorResponse, Json};
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct User { id: i64 }
///
/// async fn create(Json(user): Json<User>) -> Result<Json<User>, ErrorResponse> {
///     Ok(Json(user))
/// }
/// let _app: axum::Router = axum::Router::new().route("/users", axum::routing::post(create));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = HttpAnswer;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// axum's [`Path`](axum::extract::Path), whose rejection is a problem-details [`HttpAnswer`].
#[derive(Clone, Copy, Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    axum::extract::Path<T>:
        FromRequestParts<S, Rejection = axum::extract::rejection::PathRejection>,
    S: Send + Sync,
{
    type Rejection = HttpAnswer;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}
