//! The gate's service: pass, refuse, or hold each request by the latest health report.

use std::task::{Context, Poll};

use tokio::time::Instant;
use tower_service::Service;

use crate::{
    GateError, HealthGateLayer, HealthStatus,
    gate::{GateMode, future::ResponseFuture},
    metrics::names,
};

/// The service made by [`HealthGateLayer`](crate::HealthGateLayer).
#[derive(Clone, Debug)]
pub struct HealthGate<S> {
    pub(crate) inner: S,
    pub(crate) config: HealthGateLayer,
}

impl<S> HealthGate<S> {
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

fn reject<E: From<GateError>>(err: GateError) -> E {
    metrics::counter!(names::GATE_REJECTIONS, "reason" => err.reason()).increment(1);
    E::from(err)
}

impl<S, R> Service<R> for HealthGate<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Error: From<GateError> + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        if self.config.health.borrow().status != HealthStatus::Unhealthy {
            return ResponseFuture::pass(self.inner.call(request));
        }
        let retry_after = self.config.retry_after;
        let GateMode::Hold {
            max_wait,
            max_waiting,
        } = self.config.mode
        else {
            return ResponseFuture::reject(reject(GateError::Unhealthy { retry_after }));
        };
        let Ok(place) = self.config.queue.clone().try_acquire_owned() else {
            return ResponseFuture::reject(reject(GateError::QueueFull {
                waiting: max_waiting,
                retry_after,
            }));
        };
        // The ready service goes with the held request; this gate keeps a fresh clone, which
        // its caller will poll_ready before the next call (the usual tower pattern).
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let mut health = self.config.health.clone();
        ResponseFuture::held(Box::pin(async move {
            let start = Instant::now();
            let healthy = health.wait_for(|r| r.status != HealthStatus::Unhealthy);
            // Timed out, or the monitor is gone (its last word was Unhealthy): refuse.
            let recovered = tokio::time::timeout(max_wait, healthy)
                .await
                .is_ok_and(|outcome| outcome.is_ok());
            drop(place);
            if recovered {
                ready.call(request).await
            } else {
                Err(reject(GateError::HoldTimeout {
                    waited: start.elapsed(),
                }))
            }
        }))
    }
}
