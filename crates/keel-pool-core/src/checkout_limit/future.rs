//! [`CheckoutFuture`]: an operation holding an admission permit, or one still waiting for it.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures_util::future::BoxFuture;
use keel_core::Error;
use pin_project_lite::pin_project;
use tokio::sync::OwnedSemaphorePermit;

pin_project! {
    /// The future of [`CheckoutLimit`](crate::CheckoutLimit).
    ///
    /// A request that gets a permit at once, the usual case, runs the inner future in place;
    /// only one that has to wait for a permit is boxed.
    #[must_use = "futures do nothing unless polled"]
    pub struct CheckoutFuture<F, T> {
        #[pin]
        state: State<F, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Permitted {
            #[pin]
            future: F,
            // Released as soon as the inner future ends.
            permit: Option<OwnedSemaphorePermit>,
        },
        Queued {
            future: BoxFuture<'static, Result<T, Error>>,
        },
        Refused {
            error: Option<Error>,
        },
    }
}

impl<F, T> CheckoutFuture<F, T> {
    pub(super) fn permitted(future: F, permit: OwnedSemaphorePermit) -> Self {
        Self {
            state: State::Permitted {
                future,
                permit: Some(permit),
            },
        }
    }

    pub(super) fn queued(future: BoxFuture<'static, Result<T, Error>>) -> Self {
        Self {
            state: State::Queued { future },
        }
    }

    pub(super) fn refused(error: Error) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<F, T> Future for CheckoutFuture<F, T>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Permitted { future, permit } => {
                let result = ready!(future.poll(cx));
                drop(permit.take());
                Poll::Ready(result)
            }
            StateProj::Queued { future } => future.as_mut().poll(cx),
            StateProj::Refused { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                // Polled after completion: like most futures, never wakes.
                None => Poll::Pending,
            },
        }
    }
}

impl<F, T> fmt::Debug for CheckoutFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckoutFuture").finish_non_exhaustive()
    }
}
