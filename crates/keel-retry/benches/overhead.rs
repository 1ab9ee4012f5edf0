//! Overhead of the retry layer on a service that answers at once, against the bare service.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    convert::Infallible,
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use criterion::{Criterion, criterion_group, criterion_main};
use keel_retry::{BackoffConfig, RetryConfig, RetryIf, RetryLayer};
use tower::{Layer, Service, ServiceExt, service_fn};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Sends one request through a clone of `service` (each caller owns its handle, as with
/// `tower::ServiceBuilder` stacks shared across tasks).
async fn once<S, Req>(service: &S, request: Req) -> S::Response
where
    S: Service<Req> + Clone,
    S::Error: std::fmt::Debug,
{
    service.clone().oneshot(request).await.unwrap()
}

fn ready_service(c: &mut Criterion) {
    let rt = runtime();
    let bare = service_fn(|n: u64| async move { Ok::<_, Infallible>(n + 1) });
    let never = RetryIf::new(|_: &Infallible| false);

    let mut group = c.benchmark_group("ready_service");
    group.bench_function("bare", |b| {
        b.to_async(&rt).iter(|| once(&bare, black_box(1)));
    });

    let defaults = RetryLayer::new(never, RetryConfig::default())
        .unwrap()
        .layer(bare);
    group.bench_function("retry_default_config", |b| {
        b.to_async(&rt).iter(|| once(&defaults, black_box(1)));
    });

    let lean_config = RetryConfig {
        budget: None,
        total_timeout: None,
        ..RetryConfig::default()
    };
    let lean = RetryLayer::new(never, lean_config).unwrap().layer(bare);
    group.bench_function("retry_no_budget_no_deadline", |b| {
        b.to_async(&rt).iter(|| once(&lean, black_box(1)));
    });
    group.finish();
}

/// One failure then success, with zero backoff: the cost of a retry itself.
fn one_retry(c: &mut Criterion) {
    let rt = runtime();
    let calls = Arc::new(AtomicU64::new(0));
    let flaky = service_fn(move |n: u64| {
        let call = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            if call.is_multiple_of(2) {
                Err("transient")
            } else {
                Ok(n)
            }
        }
    });
    let config = RetryConfig {
        budget: None,
        backoff: BackoffConfig {
            base: Duration::ZERO,
            cap: Duration::ZERO,
            ..BackoffConfig::default()
        },
        ..RetryConfig::default()
    };
    let retrying = RetryLayer::new(RetryIf::new(|_: &&str| true), config)
        .unwrap()
        .layer(flaky);
    c.bench_function("one_retry_zero_backoff", |b| {
        b.to_async(&rt).iter(|| once(&retrying, black_box(1)));
    });
}

#[cfg(feature = "mongodb")]
fn mongodb_policy(c: &mut Criterion) {
    use keel_core::{Operation, OperationKind};

    let rt = runtime();
    let bare = service_fn(|_op: Operation<u64>| async { Ok::<_, keel_core::Error>(1) });
    let op = Operation::new("bench.find", OperationKind::Read, |_client| async { Ok(0) });

    let mut group = c.benchmark_group("mongodb_operation");
    group.bench_function("bare", |b| {
        b.to_async(&rt).iter(|| once(&bare, op.clone()));
    });
    let retrying = RetryLayer::mongodb(RetryConfig::default())
        .unwrap()
        .layer(bare);
    group.bench_function("retry_default_config", |b| {
        b.to_async(&rt).iter(|| once(&retrying, op.clone()));
    });
    group.finish();
}

#[cfg(not(feature = "mongodb"))]
fn mongodb_policy(_: &mut Criterion) {}

fn config() -> Criterion {
    // The machine is shared: short, steady runs are enough for nanosecond-scale overheads.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! { name = benches; config = config(); targets = ready_service, one_retry, mongodb_policy }
criterion_main!(benches);
