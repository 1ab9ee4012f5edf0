//! `CheckoutLimit<S>`: waits for an admission permit at most `wait`, then runs the inner service.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures_util::future::BoxFuture;
use keel_core::{Error, Operation};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tower_service::Service;

use super::CheckoutFuture;

/// See [`CheckoutLimitLayer`](super::CheckoutLimitLayer).
#[derive(Clone, Debug)]
pub struct CheckoutLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    wait: Duration,
}

impl<S> CheckoutLimit<S> {
    pub(crate) fn new(
        inner: S,
        permits: Arc<Semaphore>,
        waiting: Arc<AtomicUsize>,
        max_waiting: usize,
        wait: Duration,
    ) -> Self {
        Self {
            inner,
            permits,
            waiting,
            max_waiting,
            wait,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T> Service<Operation<T>> for CheckoutLimit<S>
where
    S: Service<Operation<T>, Response = T, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    T: Send + 'static,
{
    type Response = T;
    type Error = Error;
    type Future = CheckoutFuture<S::Future, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => CheckoutFuture::permitted(self.inner.call(operation), permit),
            Err(TryAcquireError::Closed) => CheckoutFuture::refused(Error::shutting_down()),
            Err(TryAcquireError::NoPermits) => CheckoutFuture::queued(self.queue(operation)),
        }
    }
}

impl<S> CheckoutLimit<S> {
    /// The path of a request that found no permit free: it waits at most the configured wait
    /// (or its remaining deadline), in a queue of bounded length.
    fn queue<T>(&mut self, operation: Operation<T>) -> BoxFuture<'static, Result<T, Error>>
    where
        S: Service<Operation<T>, Response = T, Error = Error> + Clone + Send + 'static,
        S::Future: Send + 'static,
        T: Send + 'static,
    {
        // The inner service was made ready for this call; take it and leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let permits = Arc::clone(&self.permits);
        let waiting = Arc::clone(&self.waiting);
        let max_waiting = self.max_waiting;
        // Only a request that has to wait reads the clock.
        let wait = operation
            .remaining()
            .map_or(self.wait, |left| self.wait.min(left));
        Box::pin(async move {
            // A permit freed between the call and this first poll is taken without queueing.
            let permit = match Arc::clone(&permits).try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    let _queued = WaitingGuard::enter(&waiting, max_waiting).ok_or_else(|| {
                        metrics::counter!(REJECTIONS, "reason" => "queue_full").increment(1);
                        Error::overloaded(
                            format!(
                                "operation `{}` refused: {max_waiting} requests already wait \
                                 for a connection",
                                operation.name()
                            ),
                            Some(wait),
                        )
                    })?;
                    acquire_within(permits, wait, operation.name()).await?
                }
            };
            let result = inner.call(operation).await;
            drop(permit);
            result
        })
    }
}

const REJECTIONS: &str = "keel_pool_checkout_limit_rejections_total";

async fn acquire_within(
    permits: Arc<Semaphore>,
    wait: Duration,
    name: &str,
) -> Result<OwnedSemaphorePermit, Error> {
    match tokio::time::timeout(wait, permits.acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_closed)) => Err(Error::shutting_down()),
        Err(_elapsed) => {
            metrics::counter!(REJECTIONS, "reason" => "wait_exceeded").increment(1);
            Err(Error::overloaded(
                format!(
                    "operation `{name}` waited {wait:?} for a connection; the pool is saturated"
                ),
                Some(wait),
            ))
        }
    }
}

/// Counts one waiting request; refuses when `max` already wait.
struct WaitingGuard<'a>(&'a AtomicUsize);

impl<'a> WaitingGuard<'a> {
    fn enter(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
