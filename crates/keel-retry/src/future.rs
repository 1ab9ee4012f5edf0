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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel_retry::{RetryConfig, RetryIf, RetryLayer, future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// let layer = RetryLayer::new(RetryIf::new(|_: &std::io::Error| true), RetryConfig::default())?;
    /// let mut service = layer.layer(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) }));
    /// let future: ResponseFuture<_, u32, _> = service.ready().await?.call(7);
    /// assert_eq!(future.await?, 7);
    /// # Ok(())
    /// # }
    /// ```
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
        // Armed only when an attempt with a deadline has to wait, so a service that answers
        // at once pays neither the allocation nor the timer.
        cut: DeadlineCut,
        // The error of the failed attempt while the next one waits (backoff, readiness): it is
        // the one returned if the deadline leaves no room for the next attempt after all.
        last_error: Option<S::Error>,
    }
}

/// Whether a waiting attempt is ended at the deadline.
enum DeadlineCut {
    /// Nothing has had to wait yet: no timer.
    Unasked,
    /// The timer runs until the deadline; then the policy is asked for the error.
    Armed(Pin<Box<Sleep>>),
    /// No deadline, the policy lets attempts run past it, or the cut already happened.
    Off,
}

impl DeadlineCut {
    /// `Some(error)` once the deadline has passed and the policy offers an error for it. Arms
    /// the timer on first use; registers `cx` to be woken at the deadline. The error is built
    /// only then: building it for every request would cost more than the rest of the layer.
    fn poll_passed<Req, E, P>(
        &mut self,
        policy: &P,
        request: &Req,
        deadline: Option<Instant>,
        cx: &mut Context<'_>,
    ) -> Option<E>
    where
        P: Policy<Req, E>,
    {
        if matches!(self, DeadlineCut::Unasked) {
            *self = match deadline {
                Some(at) => DeadlineCut::Armed(Box::pin(tokio::time::sleep_until(at))),
                None => DeadlineCut::Off,
            };
        }
        let DeadlineCut::Armed(timer) = self else {
            return None;
        };
        if timer.as_mut().poll(cx).is_pending() {
            return None;
        }
        // Whatever the policy says, the timer has done its work.
        *self = DeadlineCut::Off;
        policy.deadline_error(request)
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
        // The verdict was returned (the attempt in flight, if any, has been dropped).
        Done,
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
            cut: DeadlineCut::Unasked,
            last_error: None,
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
            cut: DeadlineCut::Off,
            last_error: None,
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
                    let shared = &**this.shared;
                    let (error, next) = match future.poll(cx) {
                        Poll::Ready(Ok(response)) => return Poll::Ready(Ok(response)),
                        Poll::Ready(Err(error)) => {
                            let next = shared.next_delay(
                                &*this.request,
                                &error,
                                *this.attempts,
                                *this.deadline,
                                this.previous_delay,
                            );
                            (error, next)
                        }
                        // The service below ends the attempt by the deadline itself.
                        Poll::Pending if shared.deadline_enforced_below => return Poll::Pending,
                        Poll::Pending => {
                            match this.cut.poll_passed(
                                &shared.policy,
                                &*this.request,
                                *this.deadline,
                                cx,
                            ) {
                                Some(error) => (error, Err(StopReason::DeadlineExceeded)),
                                None => return Poll::Pending,
                            }
                        }
                    };
                    match next {
                        Ok(delay) => {
                            let policy = &shared.policy;
                            let (op, class) = (
                                policy.operation_name(this.request),
                                policy.error_class(&error),
                            );
                            observe::retrying(&shared.stats, op, class, *this.attempts, delay);
                            *this.last_error = Some(error);
                            if delay.is_zero() {
                                this.state.set(State::Readying);
                            } else {
                                let sleep = tokio::time::sleep(delay);
                                this.state.set(State::Backoff { sleep });
                            }
                        }
                        Err(reason) => {
                            // Drops an attempt cut at the deadline right away.
                            this.state.set(State::Done);
                            let error =
                                give_up(shared, this.request, error, *this.attempts, reason);
                            return Poll::Ready(Err(error));
                        }
                    }
                }
                StateProj::Backoff { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    let shared = &**this.shared;
                    let (error, reason) = match this.service.poll_ready(cx) {
                        Poll::Ready(Ok(())) => match this.last_error.take() {
                            // Timers wake late (by up to a millisecond, more under load) and
                            // readiness takes time: check the deadline against the real clock
                            // before starting the attempt.
                            Some(error) if !shared.fits(Instant::now(), *this.deadline) => {
                                (error, StopReason::DeadlineExceeded)
                            }
                            _ => {
                                *this.attempts += 1;
                                shared.stats.attempt_started();
                                let future = this.service.call(this.request.clone());
                                this.state.set(State::Attempt { future });
                                continue;
                            }
                        },
                        // The service broke between attempts: no retry can help.
                        Poll::Ready(Err(error)) => (error, StopReason::NotRetryable),
                        Poll::Pending => {
                            match this.cut.poll_passed(
                                &shared.policy,
                                &*this.request,
                                *this.deadline,
                                cx,
                            ) {
                                Some(error) => (error, StopReason::DeadlineExceeded),
                                None => return Poll::Pending,
                            }
                        }
                    };
                    this.state.set(State::Done);
                    let error = give_up(shared, this.request, error, *this.attempts, reason);
                    return Poll::Ready(Err(error));
                }
                StateProj::Rejected { error } => {
                    let policy = &this.shared.policy;
                    let reason = StopReason::DeadlineExceeded;
                    return match error.take() {
                        Some(error) => {
                            observe::gave_up(
                                &this.shared.stats,
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
                // Polled after completion: as above.
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

/// Records that the layer hands `error` back after `attempts`, and lets the policy annotate it.
fn give_up<P, Req, E>(
    shared: &Shared<P>,
    request: &Req,
    error: E,
    attempts: u32,
    reason: StopReason,
) -> E
where
    P: Policy<Req, E>,
{
    let policy = &shared.policy;
    observe::gave_up(
        &shared.stats,
        policy.operation_name(request),
        policy.error_class(&error),
        attempts,
        reason,
    );
    policy.on_give_up(error, attempts, reason)
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
