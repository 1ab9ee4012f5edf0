//! The gate's response future: the inner call, an immediate refusal, or a held request.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::future::BoxFuture;

pin_project_lite::pin_project! {
    /// The future of [`HealthGate`](crate::HealthGate).
    pub struct ResponseFuture<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        Pass { #[pin] inner: F },
        Reject { error: Option<E> },
        Held { inner: BoxFuture<'static, Result<T, E>> },
    }
}

impl<F, T, E> std::fmt::Debug for ResponseFuture<F, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<F, T, E> ResponseFuture<F, T, E> {
    pub(crate) fn pass(inner: F) -> Self {
        Self {
            kind: Kind::Pass { inner },
        }
    }

    pub(crate) fn reject(error: E) -> Self {
        Self {
            kind: Kind::Reject { error: Some(error) },
        }
    }

    pub(crate) fn held(inner: BoxFuture<'static, Result<T, E>>) -> Self {
        Self {
            kind: Kind::Held { inner },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F, T, E>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Pass { inner } => inner.poll(cx),
            KindProj::Reject { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                // Polled again after completion: a caller bug; stay pending rather than panic.
                None => Poll::Pending,
            },
            KindProj::Held { inner } => inner.as_mut().poll(cx),
        }
    }
}
