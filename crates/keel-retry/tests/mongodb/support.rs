//! A scripted mock of the driver service, and operations whose closures are never called.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_core::{DriverFailure, Error, ErrorFacts, Operation, OperationKind};
use keel_retry::{BackoffConfig, Jitter, MongoPolicy, Retry, RetryConfig, RetryLayer};
use tokio::time::Instant;

use crate::common::CallLog;
use tower::{Layer, Service, ServiceExt, service_fn, util::BoxCloneService};

/// Every operation kind, for exhaustive tables.
pub(crate) const KINDS: [OperationKind; 5] = [
    OperationKind::Read,
    OperationKind::Write { idempotent: true },
    OperationKind::Write { idempotent: false },
    OperationKind::Command { idempotent: true },
    OperationKind::Command { idempotent: false },
];

/// An operation of `kind`; its closure is never run (the mock service answers instead).
pub(crate) fn op(name: &'static str, kind: OperationKind) -> Operation<u32> {
    Operation::new(name, kind, |_client| async {
        unreachable!("the mock service never runs the closure")
    })
}

pub(crate) fn io_error() -> Error {
    Error::from_facts(
        &ErrorFacts::new(DriverFailure::Io),
        "connection reset by peer",
    )
}

/// Answers from a script (then fails with an I/O error forever), recording call times.
#[derive(Clone, Default)]
pub(crate) struct Script {
    outcomes: Arc<Mutex<VecDeque<Result<u32, Error>>>>,
    calls: CallLog,
}

pub(crate) type Mock = BoxCloneService<Operation<u32>, u32, Error>;

impl Script {
    pub(crate) fn new(outcomes: impl IntoIterator<Item = Result<u32, Error>>) -> Self {
        Self {
            outcomes: Arc::new(Mutex::new(outcomes.into_iter().collect())),
            calls: CallLog::default(),
        }
    }

    pub(crate) fn service(&self) -> Mock {
        let script = self.clone();
        BoxCloneService::new(service_fn(move |_op: Operation<u32>| {
            script.calls.record();
            let next = script.outcomes.lock().unwrap().pop_front();
            std::future::ready(next.unwrap_or_else(|| Err(io_error())))
        }))
    }

    pub(crate) fn offsets(&self, start: Instant) -> Vec<Duration> {
        self.calls.offsets(start)
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.count()
    }
}

/// 100 ms doubling backoff without jitter, no budget, a 10 s total timeout.
pub(crate) fn config(max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
        backoff: BackoffConfig {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: Jitter::None,
        },
        budget: None,
        total_timeout: Some(Duration::from_secs(10)),
        attempt_timeout: None,
    }
}

pub(crate) fn retrying(config: RetryConfig, script: &Script) -> Retry<Mock, MongoPolicy> {
    RetryLayer::mongodb(config).unwrap().layer(script.service())
}

pub(crate) async fn send(
    service: &mut Retry<Mock, MongoPolicy>,
    op: Operation<u32>,
) -> Result<u32, Error> {
    service.ready().await?.call(op).await
}
