//! The initial snapshot (`StartFrom::Snapshot`, `HistoryLostPolicy::Resnapshot`): copy the
//! collection page by page as `snapshot` events, checkpointing progress, then stream from the
//! snapshot's operation time.

use keel_core::Error;
use serde::de::DeserializeOwned;

use crate::{
    ConsumerStatus, WatchTarget,
    event::RawEvent,
    metrics,
    resume::StartPoint,
    snapshot::{self, SnapshotState},
    status::bump,
    token::Token,
};

use super::{Engine, Position};

impl<T> Engine<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Records the operation time and copies the collection from its first `_id`.
    pub(super) async fn new_snapshot(
        &self,
        position: &mut Position,
    ) -> Result<Option<StartPoint>, Error> {
        let WatchTarget::Collection { database, .. } = &self.spec.target else {
            return Err(Error::config("a snapshot needs a collection target"));
        };
        let _ = self.status.send(ConsumerStatus::Snapshotting);
        let at = loop {
            match snapshot::operation_time(&self.keel, database).await {
                Ok(at) => break at,
                Err(e) if e.kind() == keel_core::ErrorKind::Config => return Err(e),
                Err(e) => self.snapshot_pause(&e).await,
            }
        };
        let state = SnapshotState {
            at,
            after: None,
            done: false,
        };
        // Stored at once: a restart continues this snapshot, at this operation time.
        position.pending = Some((state.token().into(), Some(at)));
        self.commit_now(position).await?;
        self.snapshot(position, state).await
    }

    /// Copies the documents after `state.after` as `snapshot` events, page by page, committing
    /// progress; then the stream starts at the snapshot's operation time. `None`: shut down.
    pub(super) async fn snapshot(
        &self,
        position: &mut Position,
        mut state: SnapshotState,
    ) -> Result<Option<StartPoint>, Error> {
        let WatchTarget::Collection {
            database,
            collection,
        } = &self.spec.target
        else {
            return Err(Error::config(format!(
                "consumer '{}' has a snapshot checkpoint but does not watch a collection; watch \
                 the snapshot's collection or reset the checkpoint",
                self.name
            )));
        };
        let _ = self.status.send(ConsumerStatus::Snapshotting);
        while !state.done {
            if *self.stop.borrow() {
                self.commit_pending(position, false).await?;
                return Ok(None);
            }
            if self.lease_lost.as_ref().is_some_and(|l| *l.borrow()) {
                return Err(Error::config(format!(
                    "consumer '{}' lost its lease to another instance during its snapshot and \
                     stopped; the new holder continues the snapshot",
                    self.name
                )));
            }
            let page = snapshot::page(
                &self.keel,
                database,
                collection,
                state.after.as_ref(),
                self.snapshot_page,
            )
            .await;
            let documents = match page {
                Ok(documents) => documents,
                Err(e) if e.kind() == keel_core::ErrorKind::Config => return Err(e),
                Err(e) => {
                    self.snapshot_pause(&e).await;
                    let _ = self.status.send(ConsumerStatus::Snapshotting);
                    continue;
                }
            };
            let last_page = documents.len() < self.snapshot_page as usize;
            let mut events = Vec::with_capacity(documents.len());
            let mut last = None;
            for document in documents {
                let (raw, token) = snapshot::event(database, collection, state.at, document)?;
                events.push((RawEvent::from_document(raw)?, Token::from_document(&token)));
                last = Some(token);
            }
            if let Some(next) = last.as_ref().and_then(SnapshotState::from_token) {
                state = next;
            }
            if !events.is_empty()
                && let Err(error) = self.handle(events, position).await
            {
                if self.interrupted() {
                    self.commit_pending(position, false).await?;
                    return Ok(None);
                }
                return Err(error);
            }
            if last_page {
                state.done = true;
                position.pending = Some((state.token().into(), Some(state.at)));
                self.commit_now(position).await?;
            } else {
                self.commit_pending(position, true).await?;
            }
        }
        tracing::info!(consumer = %self.name, "snapshot finished; streaming from its operation time");
        Ok(Some(StartPoint::AtOperationTime(state.at)))
    }

    /// A snapshot read failed with an outage: counted as a resume, paced like one.
    pub(super) async fn snapshot_pause(&self, error: &Error) {
        let class = error.class().as_str();
        bump(&self.stats.resumes);
        metrics::resumed(&self.name, class);
        tracing::warn!(consumer = %self.name, class, "snapshot read failed, retrying: {error}");
        let _ = self
            .status
            .send(ConsumerStatus::Resuming { attempt: 1, class });
        let mut attempts = crate::pacing::Attempts::default();
        attempts
            .wait(&self.spec.resume_backoff, &self.spec.resume_budget)
            .await;
        let _ = self.keel.ready().await;
    }
}
