//! Shared by the retry test binaries (`generic`, `mongodb`, `events`): a paused-time runtime
//! and the log of when a scripted service was called.

#![allow(dead_code, unreachable_pub)]

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

/// Runs `body` on a fresh paused current-thread runtime on this thread: a local metrics
/// recorder and the default tracing subscriber are per thread, and proptest wants a fresh
/// runtime per case.
pub fn run_paused<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(body)
}

/// When each call started, shared by a script's clones.
#[derive(Clone, Debug, Default)]
pub struct CallLog(Arc<Mutex<Vec<Instant>>>);

impl CallLog {
    /// Notes a call starting now.
    pub fn record(&self) {
        self.0.lock().unwrap().push(Instant::now());
    }

    /// When each call happened, relative to `start`.
    pub fn offsets(&self, start: Instant) -> Vec<Duration> {
        self.0.lock().unwrap().iter().map(|t| *t - start).collect()
    }

    /// How many calls were made.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}
