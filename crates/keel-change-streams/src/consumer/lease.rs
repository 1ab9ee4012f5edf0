//! Leases: wait to hold the consumer's lease, then renew it in the background; losing it
//! stops handling.

use std::sync::Arc;

use keel_core::Error;
use serde::de::DeserializeOwned;
use tokio::{sync::watch, time::Instant};

use crate::{ConsumerStatus, metrics};

use super::{AbortOnDrop, Engine};

impl<T> Engine<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Waits for the lease (when configured), then renews it in the background. `false`: shut
    /// down while waiting.
    pub(super) async fn take_lease(&mut self) -> Result<bool, Error> {
        let Some(lease) = self.lease.clone() else {
            metrics::lease_held(&self.name, true);
            return Ok(true);
        };
        metrics::lease_held(&self.name, false);
        let fence = loop {
            match self
                .store
                .acquire_lease(&self.name, &lease.owner, lease.duration)
                .await
            {
                Ok(Some(fence)) => break fence,
                Ok(None) => {
                    let _ = self.status.send(ConsumerStatus::WaitingForLease);
                }
                Err(e) if e.kind() == keel_core::ErrorKind::Config => return Err(e),
                Err(e) => tracing::warn!(consumer = %self.name, "lease not taken: {e}"),
            }
            tokio::select! {
                changed = self.stop.changed() => {
                    if changed.is_err() || *self.stop.borrow() { return Ok(false); }
                }
                () = tokio::time::sleep(lease.renew_every) => {}
            }
        };
        tracing::info!(consumer = %self.name, owner = %lease.owner, fence, "lease taken");
        metrics::lease_held(&self.name, true);
        self.fence = Some(fence);
        let (lost_tx, lost) = watch::channel(false);
        self.lease_lost = Some(lost);
        let (store, name) = (Arc::clone(&self.store), Arc::clone(&self.name));
        self.renewer = Some(AbortOnDrop(tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(lease.renew_every).await;
                match store
                    .renew_lease(&name, &lease.owner, fence, lease.duration)
                    .await
                {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => break,
                    // Unreachable store: the lease may expire under us; stop handling before.
                    Err(_) if renewed.elapsed() + lease.renew_every >= lease.duration => break,
                    Err(_) => {}
                }
            }
            metrics::lease_held(&name, false);
            let _ = lost_tx.send(true);
        })));
        Ok(true)
    }
}
