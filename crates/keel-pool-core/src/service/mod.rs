//! `MongoService`: the innermost `Service<Operation<T>>`, which runs an operation on the driver.

mod future;

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use keel_core::{Error, Operation};
use tower_service::Service;

pub use self::future::MongoFuture;
use crate::ManagedClient;

/// Runs [`Operation`]s against a [`ManagedClient`].
///
/// Before running, it refuses new operations during shutdown and, while no server can serve
/// them, holds requests in a bounded queue instead of letting each wait the driver's 30 s server
/// selection: through an election (`Reconnecting`) until the database is back, the request's
/// deadline or `reconnect_wait`; through an outage (`Unreachable`) at most until `outage_grace`
/// after it began. An operation already with the driver ends then too. Every outcome feeds the
/// connection state machine; every error is classified.
///
/// ```no_run
/// # async fn run(client: keel_pool_core::ManagedClient) -> Result<(), keel_core::Error> {
/// use keel_core::Operation;
/// use tower::ServiceExt;
/// let service = keel_pool_core::MongoService::new(client);
/// let names = Operation::read("admin.list_databases", |c: mongodb::Client| async move {
///     c.list_database_names().await
/// });
/// let names: Vec<String> = service.oneshot(names).await?;
/// # Ok(()) }
/// ```
///
/// One service runs operations of every response type: it implements
/// `Service<Operation<T>>` for all `T`.
#[derive(Clone)]
pub struct MongoService {
    client: ManagedClient,
}

impl MongoService {
    /// A service over `client`.
    pub fn new(client: ManagedClient) -> Self {
        Self { client }
    }

    /// The managed client.
    pub fn get_ref(&self) -> &ManagedClient {
        &self.client
    }

    /// Unwraps the managed client.
    pub fn into_inner(self) -> ManagedClient {
        self.client
    }
}

impl std::fmt::Debug for MongoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoService")
            .field("state", &self.client.state())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Service<Operation<T>> for MongoService {
    type Response = T;
    type Error = Error;
    type Future = MongoFuture<T>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Admission is decided per call (shutdown, reconnect queue), not by readiness: a
        // readiness that waited would hide the wait from the request's deadline.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let shared = self.client.shared();
        // Admit synchronously so an operation called before shutdown() began is counted.
        let in_flight = match shared.admit() {
            Ok(in_flight) => in_flight,
            Err(refused) => return MongoFuture::refused(refused),
        };
        if shared.can_serve() {
            let attempt = operation.call(shared.current());
            return MongoFuture::running(attempt, Arc::clone(shared), in_flight);
        }
        let shared = Arc::clone(shared);
        MongoFuture::waiting(Box::pin(async move {
            let _in_flight = in_flight;
            shared.until_serving(operation.deadline()).await?;
            shared.bounded(operation.call(shared.current())).await
        }))
    }
}
