//! The gate's layer and its modes.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Semaphore, watch};
use tower_layer::Layer;

use crate::{HealthHandle, HealthReport, gate::HealthGate};

/// What the gate does with a request while health is `Unhealthy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateMode {
    /// Refuse at once with [`GateError::Unhealthy`](crate::GateError::Unhealthy).
    FailFast,
    /// Hold the request until health leaves `Unhealthy`, at most `max_wait`; at most
    /// `max_waiting` requests wait, more are refused at once.
    Hold {
        /// Longest a request is held.
        max_wait: Duration,
        /// Most requests held at once.
        max_waiting: usize,
    },
}

/// Puts a [`HealthGate`] in front of a service. Default mode: [`GateMode::FailFast`].
///
/// Place it at the top of the stack (above the breaker and retry): a refused request then costs
/// nothing below it.
#[derive(Clone, Debug)]
pub struct HealthGateLayer {
    pub(crate) health: watch::Receiver<HealthReport>,
    pub(crate) mode: GateMode,
    pub(crate) queue: Arc<Semaphore>,
    pub(crate) retry_after: Duration,
}

impl HealthGateLayer {
    /// A fail-fast gate on a monitor's health; refusals suggest retrying after one check
    /// interval.
    pub fn new(health: &HealthHandle) -> Self {
        Self::from_receiver(health.subscribe(), health.check_interval())
    }

    /// A fail-fast gate on any stream of reports.
    pub fn from_receiver(health: watch::Receiver<HealthReport>, retry_after: Duration) -> Self {
        Self {
            health,
            mode: GateMode::FailFast,
            queue: Arc::new(Semaphore::new(0)),
            retry_after,
        }
    }

    /// Holds requests instead of refusing them: up to `max_waiting` at once, each up to
    /// `max_wait`. Keep `max_wait` short (a second or two): it is for riding out a blip, not an
    /// outage.
    #[must_use]
    pub fn hold(mut self, max_wait: Duration, max_waiting: usize) -> Self {
        self.mode = GateMode::Hold {
            max_wait,
            max_waiting,
        };
        self.queue = Arc::new(Semaphore::new(max_waiting));
        self
    }

    /// The mode.
    pub fn mode(&self) -> GateMode {
        self.mode
    }
}

impl<S> Layer<S> for HealthGateLayer {
    type Service = HealthGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HealthGate {
            inner,
            config: self.clone(),
        }
    }
}
