//! Shared by the integration tests: an operation that fails on the first attempts as a flaky
//! network would, and a check that Keel retries it.

#![allow(dead_code, unreachable_pub)]

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use keel_core::Operation;
use mongokeel::Keel;

/// What [`flaky`] answers once it stops failing.
pub const ANSWER: u32 = 7;

/// A read named `name` that fails its first `failures` attempts with a network error
/// (retryable), then answers [`ANSWER`]; counts its attempts in `attempts`.
pub fn flaky(name: &'static str, failures: u32, attempts: Arc<AtomicU32>) -> Operation<u32> {
    Operation::read(name, move |_client| {
        let n = attempts.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < failures {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into())
            } else {
                Ok(ANSWER)
            }
        }
    })
}

/// Runs a [`flaky`] read named `name` that fails once through `keel`, which must answer it
/// after exactly one retry.
pub async fn answers_after_one_failure(keel: &Keel, name: &'static str) {
    let attempts = Arc::new(AtomicU32::new(0));
    let operation = flaky(name, 1, Arc::clone(&attempts));
    assert_eq!(keel.run(operation).await.unwrap(), ANSWER);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "one failure, then the answer"
    );
}
