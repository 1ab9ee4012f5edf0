//! `OperationMetricsLayer`: count, errors by class and latency per operation name.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use std::sync::Arc;

use keel_core::{Error, Operation};
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use super::operation_keys::{KeyCache, OperationKeys};
use crate::OperationStats;

/// Records every operation that passes: `keel_operations_total{op,outcome}`,
/// `keel_operation_errors_total{op,class}` and `keel_operation_duration_seconds{op}`, and,
/// with [`with_stats`](Self::with_stats), into an [`OperationStats`] for the health monitor and
/// the dashboard.
///
/// The `op` label is the operation's name, which Keel requires to come from a fixed set in code.
/// Put the layer at the top of the stack (above retry) to measure what callers see: one count and
/// one latency per operation, all attempts included.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use keel_core::{Error, Operation};
/// use keel_health::{OperationMetricsLayer, OperationStats};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// let stats = OperationStats::default();
/// let service = ServiceBuilder::new()
///     .layer(OperationMetricsLayer::new().with_stats(stats.clone()))
///     .service(service_fn(|_op: Operation<u32>| async { Ok::<_, Error>(7) }));
/// let op = Operation::read("users.count", |_c: mongodb::Client| async { Ok(0u32) });
/// assert_eq!(service.oneshot(op).await.unwrap(), 7);
/// assert_eq!(stats.snapshot().total, 1);
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct OperationMetricsLayer {
    stats: Option<OperationStats>,
    keys: KeyCache,
}

impl OperationMetricsLayer {
    /// Records to the `metrics` facade only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also records into `stats`.
    #[must_use]
    pub fn with_stats(mut self, stats: OperationStats) -> Self {
        self.stats = Some(stats);
        self
    }
}

impl<S> Layer<S> for OperationMetricsLayer {
    type Service = OperationMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OperationMetrics {
            inner,
            stats: self.stats.clone(),
            keys: self.keys.clone(),
        }
    }
}

/// The service made by [`OperationMetricsLayer`].
#[derive(Clone, Debug)]
pub struct OperationMetrics<S> {
    inner: S,
    stats: Option<OperationStats>,
    keys: KeyCache,
}

impl<S> OperationMetrics<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T> Service<Operation<T>> for OperationMetrics<S>
where
    S: Service<Operation<T>, Error = Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = OperationMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let keys = self.keys.get(operation.label());
        OperationMetricsFuture {
            inner: self.inner.call(operation),
            keys,
            start: Instant::now(),
            stats: self.stats.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`OperationMetrics`].
    #[derive(Debug)]
    pub struct OperationMetricsFuture<F> {
        #[pin]
        inner: F,
        keys: Arc<OperationKeys>,
        start: Instant,
        stats: Option<OperationStats>,
    }
}

impl<F, R> Future for OperationMetricsFuture<F>
where
    F: Future<Output = Result<R, Error>>,
{
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let elapsed = this.start.elapsed();
        let class = result.as_ref().err().map(Error::class);
        this.keys
            .record(class.map(|class| class.as_str()), elapsed.as_secs_f64());
        if let Some(stats) = this.stats {
            stats.record(elapsed, class);
        }
        Poll::Ready(result)
    }
}
