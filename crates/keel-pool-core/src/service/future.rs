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

use crate::{client::Shared, in_flight::InFlightGuard};

/// The future of [`MongoService`](crate::MongoService): the operation running on the driver, or
/// waiting in the reconnect queue first, or refused (shutting down).
///
/// An operation admitted while the client can serve, the usual case, runs without an
/// allocation of its own; only one that has to wait for the database is boxed.
#[must_use = "futures do nothing unless polled"]
pub struct MongoFuture<T> {
    state: State<T>,
}

enum State<T> {
    Running {
        operation: OperationFuture<T>,
        shared: Arc<Shared>,
        // Counted until the outcome is known, so a graceful shutdown waits for it.
        _in_flight: InFlightGuard,
    },
    Waiting(BoxFuture<'static, Result<T, Error>>),
    Refused(Option<Error>),
    Done,
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
                shared,
                _in_flight: in_flight,
            },
        }
    }

    pub(crate) fn waiting(future: BoxFuture<'static, Result<T, Error>>) -> Self {
        Self {
            state: State::Waiting(future),
        }
    }

    pub(crate) fn refused(error: Error) -> Self {
        Self {
            state: State::Refused(Some(error)),
        }
    }
}

impl<T> Future for MongoFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin: the operation and the waiting path are boxed futures.
        let state = &mut self.get_mut().state;
        let result = match state {
            State::Running {
                operation, shared, ..
            } => {
                let result = ready!(operation.as_mut().poll(cx)).map_err(Error::from);
                shared.observe(result.as_ref().map(|_| ()));
                result
            }
            State::Waiting(future) => ready!(future.as_mut().poll(cx)),
            State::Refused(error) => match error.take() {
                Some(error) => Err(error),
                None => return Poll::Pending,
            },
            // Polled after completion: like most futures, never wakes.
            State::Done => return Poll::Pending,
        };
        // Ends the in-flight count now, not when the caller drops this future.
        *state = State::Done;
        Poll::Ready(result)
    }
}

impl<T> fmt::Debug for MongoFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Running { .. } => "running",
            State::Waiting(_) => "waiting",
            State::Refused(_) => "refused",
            State::Done => "done",
        };
        f.debug_struct("MongoFuture")
            .field("state", &state)
            .finish()
    }
}
