//! Hot-path cost of the breaker: permit + record on the `Breaker`, and the layer over a ready
//! service against the bare service, on 1 and 2 threads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    future::{Ready, ready},
    hint::black_box,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use keel_breaker::{Breaker, BreakerConfig, CallOutcome};
use tower::{Layer, Service};

/// A service that is always ready and answers at once.
#[derive(Clone, Copy)]
struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = &'static str;
    type Future = Ready<Result<u64, &'static str>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: u64) -> Self::Future {
        ready(Ok(req))
    }
}

fn drive<S: Service<u64>>(service: &mut S, request: u64) -> bool {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    if !service.poll_ready(&mut cx).is_ready() {
        return false;
    }
    matches!(service.call(request).now_or_never(), Some(Ok(_)))
}

fn breaker() -> Breaker {
    Breaker::new("bench", BreakerConfig::default()).unwrap()
}

/// Runs `work` `iters` times on each of two threads at once; returns the wall time.
fn two_threads<W: Fn(u64) + Sync>(iters: u64, work: W) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for i in 0..iters {
                    work(i);
                }
            });
        }
    });
    start.elapsed()
}

fn permit_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("permit_record");
    let b1 = breaker();
    group.bench_function("1_thread", |b| {
        b.iter(|| {
            b1.try_acquire()
                .unwrap()
                .record(black_box(CallOutcome::Success))
        });
    });
    // Without the slow-call rule a count-window breaker never reads the clock: the lock-free
    // core alone.
    let no_clock = Breaker::new(
        "bench-no-clock",
        BreakerConfig {
            slow_calls: None,
            ..BreakerConfig::default()
        },
    )
    .unwrap();
    group.bench_function("1_thread_no_clock", |b| {
        b.iter(|| {
            no_clock
                .try_acquire()
                .unwrap()
                .record(black_box(CallOutcome::Success));
        });
    });
    // What the slow-call rule costs: two of these per call.
    group.bench_function("clock_read", |b| b.iter(tokio::time::Instant::now));
    // The same read without tokio's `test-util` (which the dev-dependencies switch on for
    // paused-time tests): what a production build pays.
    group.bench_function("clock_read_std", |b| b.iter(Instant::now));
    let b2 = breaker();
    group.bench_function("2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |_| {
                b2.try_acquire()
                    .unwrap()
                    .record(black_box(CallOutcome::Success));
            })
        });
    });
    let b3 = Breaker::new(
        "bench-no-clock-2",
        BreakerConfig {
            slow_calls: None,
            ..BreakerConfig::default()
        },
    )
    .unwrap();
    group.bench_function("2_threads_no_clock", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |_| {
                b3.try_acquire()
                    .unwrap()
                    .record(black_box(CallOutcome::Success));
            })
        });
    });
    group.finish();
}

fn layer_vs_bare(c: &mut Criterion) {
    let mut group = c.benchmark_group("service");
    group.bench_function("bare/1_thread", |b| {
        let mut svc = Echo;
        b.iter(|| assert!(drive(&mut svc, black_box(1))));
    });
    let shared = breaker();
    group.bench_function("breaker/1_thread", |b| {
        let mut svc = shared.layer().layer(Echo);
        b.iter(|| assert!(drive(&mut svc, black_box(1))));
    });
    group.bench_function("bare/2_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, |i| assert!(drive(&mut Echo, black_box(i)))));
    });
    let layer = breaker().layer();
    group.bench_function("breaker/2_threads", |b| {
        b.iter_custom(|iters| {
            std::thread::scope(|scope| {
                let start = Instant::now();
                for _ in 0..2 {
                    let mut svc = layer.layer(Echo);
                    scope.spawn(move || {
                        for i in 0..iters {
                            assert!(drive(&mut svc, black_box(i)));
                        }
                    });
                }
                // Joined when the scope ends; measure up to then.
                start
            })
            .elapsed()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = permit_record, layer_vs_bare
}
criterion_main!(benches);
