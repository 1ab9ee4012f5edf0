//! [`MongoFuture`]: one operation on the driver, from admission to its classified outcome.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use futures_util::future::BoxFuture;
use keel_core::{Error, OperationFuture};
use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;

use crate::{client::Shared, in_flight::InFlightGuard};

pin_project! {
    /// The future of [`MongoService`](crate::MongoService): the operation running on the
    /// driver, or waiting in the reconnect queue first, or refused (shutting down).
    ///
    /// An operation admitted while the client can serve, the usual case, runs without an
    /// allocation of its own; only one that has to wait for the database is boxed. A running
    /// operation also ends when an outage it is caught in has lasted the outage grace (see
    /// `waiting::cut_at_grace`), instead of waiting out the driver's server selection.
    #[must_use = "futures do nothing unless polled"]
    pub struct MongoFuture<T> {
        #[pin]
        state: State<T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<T> {
        Running {
            operation: OperationFuture<T>,
            shared: Arc<Shared>,
            // Completes at the outage cut; polled only while the operation is pending.
            #[pin]
            cut: OwnedNotified,
            // Counted until the outcome is known, so a graceful shutdown waits for it.
            in_flight: InFlightGuard,
        },
        Waiting {
            future: BoxFuture<'static, Result<T, Error>>,
        },
        Refused {
            error: Option<Error>,
        },
        Done,
    }
}

impl<T> MongoFuture<T> {
    pub(crate) fn running(
        operation: OperationFuture<T>,
        shared: Arc<Shared>,
        in_flight: InFlightGuard,
    ) -> Self {
        Self {
            state: State::Running {
                operation,
                cut: shared.outage_cut(),
                shared,
                in_flight,
            },
        }
    }

    pub(crate) fn waiting(future: BoxFuture<'static, Result<T, Error>>) -> Self {
        Self {
            state: State::Waiting { future },
        }
    }

    pub(crate) fn refused(error: Error) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<T> Future for MongoFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = match this.state.as_mut().project() {
            StateProj::Running {
                operation,
                shared,
                mut cut,
                ..
            } => match operation.as_mut().poll(cx) {
                Poll::Ready(result) => {
                    let result = result.map_err(Error::from);
                    shared.observe(result.as_ref().map(|_| ()));
                    result
                }
                Poll::Pending => loop {
                    ready!(cut.as_mut().poll(cx));
                    if let Some(cut_short) = shared.in_flight_cut() {
                        break Err(cut_short);
                    }
                    // Woken for an outage that has ended since: wait for the next cut.
                    cut.set(shared.outage_cut());
                },
            },
            StateProj::Waiting { future } => ready!(future.as_mut().poll(cx)),
            StateProj::Refused { error } => match error.take() {
                Some(error) => Err(error),
                None => return Poll::Pending,
            },
            // Polled after completion: like most futures, never wakes.
            StateProj::Done => return Poll::Pending,
        };
        // Ends the in-flight count now, not when the caller drops this future.
        this.state.set(State::Done);
        Poll::Ready(result)
    }
}

impl<T> fmt::Debug for MongoFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Running { .. } => "running",
            State::Waiting { .. } => "waiting",
            State::Refused { .. } => "refused",
            State::Done => "done",
        };
        f.debug_struct("MongoFuture")
            .field("state", &state)
            .finish()
    }
}
