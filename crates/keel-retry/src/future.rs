//! [`ResponseFuture`]: one request's attempts, backoff sleeps and final verdict.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::{Policy, StopReason, layer::Shared, observe};

pin_project! {
    /// The future returned by [`Retry`](crate::Retry): resolves to the first success, or to the
    /// last error annotated by [`Policy::on_give_up`].
    pub struct ResponseFuture<S, Req, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future, S::Error>,
        request: Req,
        service: S,
        shared: Arc<Shared<P>>,
        attempts: u32,
        deadline: Option<Instant>,
        previous_delay: Duration,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, E> {
        // An attempt is in flight.
        Attempt { #[pin] future: F },
        // Waiting out the backoff delay.
        Backoff { #[pin] sleep: Sleep },
        // Waiting for the service to accept the next attempt.
        Readying,
        // Refused before the first attempt; the error is taken when polled.
        Rejected { error: Option<E> },
    }
}

impl<S, Req, P> ResponseFuture<S, Req, P>
where
    S: Service<Req>,
{
    pub(crate) fn new(
        first: S::Future,
        request: Req,
        service: S,
        shared: Arc<Shared<P>>,
        deadline: Option<Instant>,
    ) -> Self {
        Self {
            state: State::Attempt { future: first },
            request,
            service,
            shared,
            attempts: 1,
            deadline,
            previous_delay: Duration::ZERO,
        }
    }

    pub(crate) fn rejected(
        error: S::Error,
        request: Req,
        service: S,
        shared: Arc<Shared<P>>,
    ) -> Self {
        Self {
            state: State::Rejected { error: Some(error) },
            request,
            service,
            shared,
            attempts: 0,
            deadline: None,
            previous_delay: Duration::ZERO,
        }
    }
}

impl<S, Req, P> Future for ResponseFuture<S, Req, P>
where
    S: Service<Req>,
    Req: Clone,
    P: Policy<Req, S::Error>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Attempt { future } => {
                    let error = match ready!(future.poll(cx)) {
                        Ok(response) => return Poll::Ready(Ok(response)),
                        Err(error) => error,
                    };
                    let shared = &**this.shared;
                    let policy = &shared.policy;
                    let next = shared.next_delay(
                        &*this.request,
                        &error,
                        *this.attempts,
                        *this.deadline,
                        this.previous_delay,
                    );
                    let op = policy.operation_name(this.request);
                    let class = policy.error_class(&error);
                    match next {
                        Ok(delay) => {
                            observe::retrying(op, class, *this.attempts, delay);
                            if delay.is_zero() {
                                this.state.set(State::Readying);
                            } else {
                                let sleep = tokio::time::sleep(delay);
                                this.state.set(State::Backoff { sleep });
                            }
                        }
                        Err(reason) => {
                            observe::gave_up(op, class, *this.attempts, reason);
                            let error = policy.on_give_up(error, *this.attempts, reason);
                            return Poll::Ready(Err(error));
                        }
                    }
                }
                StateProj::Backoff { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    // A readiness error is the service's, not an attempt's: returned as is.
                    ready!(this.service.poll_ready(cx))?;
                    *this.attempts += 1;
                    let future = this.service.call(this.request.clone());
                    this.state.set(State::Attempt { future });
                }
                StateProj::Rejected { error } => {
                    let policy = &this.shared.policy;
                    let reason = StopReason::DeadlineExceeded;
                    return match error.take() {
                        Some(error) => {
                            observe::gave_up(
                                policy.operation_name(this.request),
                                policy.error_class(&error),
                                0,
                                reason,
                            );
                            Poll::Ready(Err(error))
                        }
                        // Futures may panic when polled after completion; this one waits
                        // forever instead, which is also allowed and harms nobody.
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl<S, Req, P> fmt::Debug for ResponseFuture<S, Req, P>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
