//! The `request_queuing` example's router under more concurrent requests than it admits: with
//! the database holding every reply (a paused testkit server), the admitted requests wait and
//! every other one is refused with 429 at once (before anything is answered by the database),
//! then the admitted ones complete when the database answers again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/request_queuing/app.rs"]
mod app;

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use keel_testkit::TestServer;
use mongodb::bson::{Document, doc};
use mongokeel::{Keel, KeelConfig};
use serde_json::Value;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// A bound on a hang, not a speed measurement.
const PATIENCE: Duration = Duration::from_secs(20);

const MAX_IN_FLIGHT: usize = 2;
const EXTRA: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_limit_are_refused_at_once_with_429() {
    // Pausing needs the testkit: a real server cannot be made to hold its replies.
    let server = TestServer::start().await.unwrap();
    let mut config = KeelConfig::development(server.uri()).unwrap();
    // Long enough that the held requests wait for the resume, not for a timeout.
    for (path, value) in [
        ("timeouts.attempt", "15s"),
        ("timeouts.deadline", "15s"),
        ("timeouts.connect", "15s"),
    ] {
        config.set(path, value).unwrap();
    }
    config.validate().unwrap();
    let keel = Keel::builder(config).build().await.unwrap();
    keel.collection::<Document>("keel_example", "items")
        .insert_one(doc! { "_id": 1, "name": "anchor" })
        .await
        .unwrap();
    let app = app::router(&keel, MAX_IN_FLIGHT);

    server.pause();
    let mut calls = JoinSet::new();
    for _ in 0..MAX_IN_FLIGHT + EXTRA {
        let app = app.clone();
        calls.spawn(async move {
            let request = Request::get("/items/1").body(Body::empty()).unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                headers,
                serde_json::from_slice::<Value>(&bytes).unwrap(),
            )
        });
    }

    // While the database holds every reply, only refusals can come back: exactly EXTRA of
    // them, all 429 with Retry-After and a problem body.
    for _ in 0..EXTRA {
        let (status, headers, body) = tokio::time::timeout(PATIENCE, calls.join_next())
            .await
            .expect("a refusal comes back while the database is paused")
            .unwrap()
            .unwrap();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(body["status"], 429);
        assert_eq!(body["class"], "overloaded");
        assert_eq!(
            body["detail"],
            "The service is busy. Please try again shortly."
        );
    }
    assert_eq!(
        calls.len(),
        MAX_IN_FLIGHT,
        "the admitted requests are still waiting"
    );

    server.resume();
    while let Some(joined) = tokio::time::timeout(PATIENCE, calls.join_next())
        .await
        .expect("the admitted requests complete once the database answers")
    {
        let (status, _, body) = joined.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["name"], "anchor");
    }

    // Capacity is back: the next request is served.
    let again = app
        .oneshot(Request::get("/items/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    keel.shutdown().await;
}
