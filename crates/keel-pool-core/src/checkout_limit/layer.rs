//! `CheckoutLimitLayer`: wraps a service in a [`CheckoutLimit`].

use std::{
    sync::{Arc, atomic::AtomicUsize},
    time::Duration,
};

use tokio::sync::Semaphore;
use tower_layer::Layer;

use super::CheckoutLimit;

/// Admits at most `max_concurrent` operations; others wait at most `wait`, then fail with
/// `Overloaded`. All services made by one layer share the limit.
///
/// ```
/// use std::time::Duration;
/// use keel_pool_core::CheckoutLimitLayer;
/// // Match the driver's maxPoolSize, so the driver's own checkout never waits long.
/// let layer = CheckoutLimitLayer::new(10, Duration::from_millis(200));
/// assert_eq!(layer.max_concurrent(), 10);
/// ```
#[derive(Clone, Debug)]
pub struct CheckoutLimitLayer {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_concurrent: usize,
    max_waiting: usize,
    wait: Duration,
}

impl CheckoutLimitLayer {
    /// A limit of `max_concurrent` operations (at least 1) with a wait of `wait`.
    pub fn new(max_concurrent: usize, wait: Duration) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_concurrent,
            max_waiting: usize::MAX,
            wait,
        }
    }

    /// Bounds how many requests may wait at once; the next one fails at once with `Overloaded`.
    #[must_use]
    pub fn with_max_waiting(mut self, max_waiting: usize) -> Self {
        self.max_waiting = max_waiting;
        self
    }

    /// The most operations admitted at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }
}

impl<S> Layer<S> for CheckoutLimitLayer {
    type Service = CheckoutLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CheckoutLimit::new(
            inner,
            Arc::clone(&self.permits),
            Arc::clone(&self.waiting),
            self.max_waiting,
            self.wait,
        )
    }
}
