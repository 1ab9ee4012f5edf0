//! Trying a restore step again after a transient failure (a connection reset, a primary
//! stepping down, a pool cleared), until an outage deadline: the restore's writes are
//! idempotent upserts, `$set`s, drops and creates that tolerate "exists", so running one again
//! leaves the state it would have left once. The driver retries a write once by itself; this
//! covers a second failure and an outage longer than one retry.

use std::future::Future;
use std::time::{Duration, Instant};

use keel_core::OperationKind;

/// Whether `error` is worth trying again for an idempotent step (Keel's own classification).
pub(crate) fn is_transient(error: &mongodb::error::Error) -> bool {
    keel_core::Error::from(error.clone()).is_retryable(OperationKind::Write { idempotent: true })
}

/// Runs `attempt` until it succeeds, fails for good, or fails transiently for longer than
/// `deadline` since its first failure; the backoff doubles from 50 ms to 2 s.
pub(crate) async fn retry<T, F, Fut>(
    deadline: Duration,
    what: &str,
    mut attempt: F,
) -> mongodb::error::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = mongodb::error::Result<T>>,
{
    let mut since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let first = *since.get_or_insert_with(Instant::now);
                if !is_transient(&error) || first.elapsed() >= deadline {
                    return Err(error);
                }
                tracing::warn!(step = what, error = %keel_core::Error::from(error), "a restore step failed transiently; trying it again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
