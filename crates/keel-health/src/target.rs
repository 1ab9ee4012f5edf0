//! What the monitor watches: a [`HealthTarget`] (implemented for pool-core's `ManagedClient`).

use futures_util::future::BoxFuture;
use keel_core::Error;
use keel_pool_core::{ConnectionState, ManagedClient, PoolStats, ResetRefused};
use mongodb::bson::doc;
use tokio::sync::watch;

/// The database connection as the health monitor sees it.
///
/// Implemented for [`ManagedClient`]; tests implement it with a scripted fake so monitor,
/// alert and recovery logic run under paused time without a server.
pub trait HealthTarget: Send + Sync + 'static {
    /// One cheap round trip to the server (a `ping`). The monitor bounds it with its timeout.
    fn ping(&self) -> BoxFuture<'static, Result<(), Error>>;

    /// The connection state and its changes.
    fn connection(&self) -> watch::Receiver<ConnectionState>;

    /// Pool numbers now.
    fn pool_stats(&self) -> PoolStats;

    /// Asks for a fresh driver client (a new pool).
    fn reset(&self) -> Result<(), ResetRefused>;
}

impl HealthTarget for ManagedClient {
    fn ping(&self) -> BoxFuture<'static, Result<(), Error>> {
        // The current client, taken per check: after a reset the next check uses the new one.
        let client = self.current();
        Box::pin(async move {
            client
                .database("admin")
                .run_command(doc! { "ping": 1 })
                .await
                .map(|_| ())
                .map_err(Error::from)
        })
    }

    fn connection(&self) -> watch::Receiver<ConnectionState> {
        self.subscribe()
    }

    fn pool_stats(&self) -> PoolStats {
        ManagedClient::pool_stats(self)
    }

    fn reset(&self) -> Result<(), ResetRefused> {
        ManagedClient::reset(self)
    }
}
