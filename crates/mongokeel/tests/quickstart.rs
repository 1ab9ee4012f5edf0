//! Runs the `quickstart` example's steps against keel-testkit (or `KEEL_TEST_URI`), so the
//! example is exercised in CI, not only compiled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/quickstart/tour.rs"]
mod tour;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_and_shows_a_duplicate_key() {
    let real = std::env::var("KEEL_TEST_URI")
        .ok()
        .filter(|u| !u.is_empty());
    let server = match real {
        Some(_) => None,
        None => Some(keel_testkit::TestServer::start().await.unwrap()),
    };
    let uri = real.unwrap_or_else(|| server.as_ref().unwrap().uri());
    let tour = tour::run(uri).await.unwrap();
    let ada = tour.found.expect("Ada was stored");
    assert_eq!((ada.id, ada.name.as_str(), ada.logins), (1, "Ada", 1));
    let (class, retryable, message) = tour.duplicate;
    assert_eq!(class, "invalid_input");
    assert!(!retryable, "a duplicate key is never retried");
    assert!(message.contains("already exists"), "{message}");
}
