//! The request and answer the assembled stack carries, with the operation's result type erased,
//! so Keel's layers and the user's form one service type whatever an operation returns.

use std::{
    any::Any,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use futures_util::future::BoxFuture;
use keel_core::{Error, Operation, OperationKind, OperationName};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::{Service, util::BoxCloneSyncService};

/// An operation's answer inside the stack: the value of the caller's `Operation<T>`, boxed.
/// A layer passes it through; `Keel::run` turns it back into the `T` the caller asked for.
pub type AnyValue = Box<dyn Any + Send + 'static>;

/// The request every layer of the assembled stack sees: the caller's operation (its name,
/// kind and deadline unchanged) answering an [`AnyValue`].
pub type KeelRequest = Operation<AnyValue>;

/// The service a user's layer wraps and must return (boxed): see
/// [`KeelBuilder::layer_around_call`](crate::KeelBuilder::layer_around_call).
pub type KeelService = BoxCloneSyncService<KeelRequest, AnyValue, Error>;

/// `operation` as the stack's request, working to `deadline`.
pub(super) fn erase<T: Send + 'static>(operation: Operation<T>, deadline: Instant) -> KeelRequest {
    let (name, kind) = (operation.label().clone(), operation.kind());
    Operation::new(name, kind, move |client| {
        let attempt = operation.call(client);
        async move { attempt.await.map(|value| Box::new(value) as AnyValue) }
    })
    .with_deadline(deadline)
}

/// An operation built as the stack's request from the start, remembering the type `T` its
/// closure answers so the caller gets a `T` back.
///
/// Erasing a finished `Operation<T>` ([`erase`]) wraps its closure in a second one, so a call
/// pays two shared closures and two boxed futures per attempt; built here, it pays one of each.
pub(crate) struct TypedRequest<T> {
    pub(super) request: KeelRequest,
    _value: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> TypedRequest<T> {
    /// An operation named `name`, of `kind`, whose attempts run `run` on the client
    /// `MongoService` hands them.
    pub(crate) fn new<F, Fut>(name: OperationName, kind: OperationKind, run: F) -> Self
    where
        F: Fn(mongodb::Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = mongodb::error::Result<T>> + Send + 'static,
    {
        let request = Operation::new(name, kind, move |client| {
            let attempt = run(client);
            async move { attempt.await.map(|value| Box::new(value) as AnyValue) }
        });
        Self {
            request,
            _value: PhantomData,
        }
    }
}

/// The caller's value back from the stack's answer.
pub(super) fn restore<T: 'static>(value: AnyValue, name: &OperationName) -> Result<T, Error> {
    value.downcast::<T>().map(|value| *value).map_err(|_| {
        Error::config(format!(
            "a layer added to the Keel builder answered `{name}` with a value of another type; \
             a layer must hand back what the service it wraps answered"
        ))
    })
}

type CallFn = dyn Fn(KeelRequest) -> BoxFuture<'static, Result<AnyValue, Error>> + Send + Sync;

/// The assembled stack behind one pointer: cloning the stack inside is a few reference counts,
/// and each call boxes one future.
#[derive(Clone)]
pub(crate) struct Stack(Arc<CallFn>);

impl Stack {
    pub(super) fn new<S>(service: S) -> Self
    where
        S: Service<KeelRequest, Response = AnyValue, Error = Error> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        Self(Arc::new(move |request| {
            Box::pin(ReadyThenCall::Readying {
                service: service.clone(),
                request: Some(request),
                timer: None,
            })
        }))
    }

    pub(crate) fn call(&self, request: KeelRequest) -> BoxFuture<'static, Result<AnyValue, Error>> {
        (self.0)(request)
    }
}

pin_project! {
    /// Waits for the stack to take the request, by the request's deadline (a user's layer may
    /// make readiness wait, as a concurrency limit does), then runs the call. A named future
    /// rather than an `async fn`, whose `Send` the compiler cannot prove for a generic stack.
    #[project = ReadyThenCallProj]
    enum ReadyThenCall<S: Service<KeelRequest>> {
        Readying {
            service: S,
            request: Option<KeelRequest>,
            // Armed only when the stack is not ready at once.
            timer: Option<Pin<Box<Sleep>>>,
        },
        Calling { #[pin] call: S::Future },
    }
}

impl<S> Future for ReadyThenCall<S>
where
    S: Service<KeelRequest, Response = AnyValue, Error = Error>,
{
    type Output = Result<AnyValue, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let call = match self.as_mut().project() {
                ReadyThenCallProj::Calling { call } => return call.poll(cx),
                ReadyThenCallProj::Readying {
                    service,
                    request,
                    timer,
                } => match service.poll_ready(cx) {
                    Poll::Ready(Ok(())) => match request.take() {
                        Some(request) => service.call(request),
                        // Polled after completion.
                        None => return Poll::Pending,
                    },
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => {
                        let Some(deadline) = request.as_ref().and_then(Operation::deadline) else {
                            return Poll::Pending;
                        };
                        let timer = timer
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                        ready!(timer.as_mut().poll(cx));
                        let name = request.take().map(|r| r.label().clone());
                        return Poll::Ready(Err(Error::deadline_exceeded(format!(
                            "`{}` did not finish before its deadline: the stack was not ready \
                             in time",
                            name.as_ref().map_or("operation", |n| n.as_str())
                        ))));
                    }
                },
            };
            self.set(ReadyThenCall::Calling { call });
        }
    }
}
