//! The response future: records the call's outcome on the breaker when the call completes.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;

use crate::{Permit, Policy};

pin_project! {
    /// The future of a [`CircuitBreaker`](crate::CircuitBreaker) call.
    ///
    /// Dropping it before completion records nothing (a cancelled probe frees its slot).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use keel_breaker::{Breaker, BreakerConfig, future::ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// let breaker = Breaker::new("t", BreakerConfig::default()).unwrap();
    /// let mut service = breaker.layer().layer(service_fn(|n: u32| async move { Ok::<_, ()>(n) }));
    /// let future: ResponseFuture<_, _, _, _> = service.ready().await.unwrap().call(1);
    /// assert_eq!(future.await.unwrap(), 1);
    /// assert_eq!(breaker.window().calls, 1);
    /// # }
    /// ```
    pub struct ResponseFuture<F, P, B, E> {
        #[pin]
        kind: Kind<F, P, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, P, B, E> {
        Called {
            #[pin]
            future: F,
            permit: Option<Permit>,
            policy: P,
        },
        Fallback {
            #[pin]
            future: B,
        },
        Rejected {
            error: Option<E>,
        },
    }
}

impl<F, P, B, E> ResponseFuture<F, P, B, E> {
    pub(crate) fn called(future: F, permit: Permit, policy: P) -> Self {
        Self {
            kind: Kind::Called {
                future,
                permit: Some(permit),
                policy,
            },
        }
    }

    pub(crate) fn fallback(future: B) -> Self {
        Self {
            kind: Kind::Fallback { future },
        }
    }

    pub(crate) fn rejected(error: E) -> Self {
        Self {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<F, P, B, Res, InnerErr> Future for ResponseFuture<F, P, B, P::Error>
where
    F: Future<Output = Result<Res, InnerErr>>,
    P: Policy<Res, InnerErr>,
    B: Future<Output = Result<Res, P::Error>>,
{
    type Output = Result<Res, P::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                future,
                permit,
                policy,
            } => {
                let result = std::task::ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.record(policy.classify(&result));
                }
                Poll::Ready(result.map_err(|e| policy.error(e)))
            }
            KindProj::Fallback { future } => future.poll(cx),
            KindProj::Rejected { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                // Polled again after completion: like most futures, never wakes.
                None => Poll::Pending,
            },
        }
    }
}

impl<F, P, B, E> std::fmt::Debug for ResponseFuture<F, P, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
