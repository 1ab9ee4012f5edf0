//! The run loop: take the lease, load the checkpoint, choose where the stream starts, then read
//! and drain it until it ends, applying the invalidate and history-lost policies.

use std::sync::Arc;

use keel_core::Error;
use serde::de::DeserializeOwned;
use tokio::{sync::mpsc, time::Instant};

use crate::{
    ConsumerStatus, HistoryLostPolicy, InvalidatePolicy, Notice, StartFrom,
    checkpoint::start_at_of, metrics, reader::Reader, resume::StartPoint, snapshot::SnapshotState,
};

use super::{AbortOnDrop, Ended, Engine, Position, age_of, now_timestamp};

impl<T> Engine<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(super) async fn run(mut self) -> Result<(), Error> {
        let result = self.consume().await;
        if let Err(error) = &result {
            let _ = self.stop_error.set(Arc::new(error.clone()));
        }
        // Stop renewing: the lease expires and a standby takes over.
        self.renewer = None;
        let error = result.as_ref().err().map(ToString::to_string);
        metrics::lease_held(&self.name, false);
        let _ = self.status.send(ConsumerStatus::Stopped { error });
        result
    }

    pub(super) async fn consume(&mut self) -> Result<(), Error> {
        if !self.take_lease().await? {
            return Ok(());
        }
        let stored = self.store.load(&self.name).await?;
        if let Some(c) = &stored {
            self.stats
                .checkpoint_stored(crate::token_time(&c.token).or(c.cluster_time));
        }
        let snapshot = stored
            .as_ref()
            .and_then(|c| SnapshotState::from_token(&c.token));
        let from_checkpoint = stored.as_ref().map(|c| c.token.clone());
        let mut position = Position {
            last_cluster_time: stored.as_ref().and_then(|c| c.cluster_time),
            stored,
            pending: None,
            since_commit: 0,
            last_commit: Instant::now(),
        };
        let mut start = match (from_checkpoint, snapshot, &self.start_from) {
            // A snapshot in progress (or just finished) continues where it stands.
            (Some(_), Some(state), _) => match self.snapshot(&mut position, state).await? {
                Some(start) => start,
                None => return Ok(()),
            },
            // An operator's reset to a time (`keel streams reset --to TIME`).
            (Some(token), None, _) => match start_at_of(&token) {
                Some(at) => StartPoint::AtOperationTime(at),
                // `startAfter` accepts every token `resumeAfter` does, and an invalidate's too.
                None => StartPoint::StartAfter(token),
            },
            (None, _, StartFrom::Now) => StartPoint::Now,
            (None, _, StartFrom::At(at)) => StartPoint::AtOperationTime(*at),
            (None, _, StartFrom::After(token)) => StartPoint::StartAfter(token.clone()),
            (None, _, StartFrom::Snapshot) => match self.new_snapshot(&mut position).await? {
                Some(start) => start,
                None => return Ok(()),
            },
        };
        loop {
            let (tx, rx) = mpsc::channel(self.buffer);
            let reader = Reader {
                keel: self.keel.clone(),
                name: Arc::clone(&self.name),
                spec: Arc::clone(&self.spec),
                stats: Arc::clone(&self.stats),
                status: self.status.clone(),
            };
            let reading = AbortOnDrop(tokio::spawn(reader.run(start.clone(), tx)));
            let ended = if self.partitions > 1 {
                self.drain_partitioned(rx, &mut position).await
            } else {
                self.drain(rx, &mut position).await
            };
            drop(reading);
            match ended {
                Ended::Shutdown => {
                    self.commit_pending(&mut position, false).await?;
                    return Ok(());
                }
                Ended::LeaseLost => {
                    return Err(Error::config(format!(
                        "consumer '{}' lost its lease to another instance and stopped handling; \
                         events after its last commit are the new holder's",
                        self.name
                    )));
                }
                Ended::Invalidated(token) => {
                    self.commit_pending(&mut position, false).await?;
                    match self.invalidate {
                        InvalidatePolicy::Stop => return Ok(()),
                        InvalidatePolicy::Restart => {
                            self.notify(Notice::Restarted);
                            start = StartPoint::StartAfter(token.to_document()?);
                        }
                    }
                }
                Ended::Failed(error) if error.code() == Some(286) => {
                    // Whatever was handled is still committed: the gap starts after it.
                    self.commit_pending(&mut position, false).await?;
                    match self.history_lost {
                        HistoryLostPolicy::Fail => {
                            return Err(Error::config(format!(
                                "consumer '{}' cannot resume: its checkpoint ({}) is no longer \
                                 in the oplog (ChangeStreamHistoryLost); reset it with `keel \
                                 streams reset --name {} --to now` (events in between are lost) \
                                 or enlarge the oplog",
                                self.name,
                                age_of(position.stored.as_ref()),
                                self.name
                            )));
                        }
                        HistoryLostPolicy::RestartFromNow => {
                            metrics::gap(&self.name);
                            let to = now_timestamp();
                            tracing::error!(consumer = %self.name, "change stream history lost: restarting from now, events were lost");
                            self.notify(Notice::Gap {
                                from: position.last_cluster_time,
                                to,
                            });
                            start = StartPoint::Now;
                        }
                        HistoryLostPolicy::Resnapshot => {
                            tracing::warn!(consumer = %self.name, "change stream history lost: copying the collection again");
                            self.notify(Notice::Resnapshot {
                                from: position.last_cluster_time,
                            });
                            match self.new_snapshot(&mut position).await? {
                                Some(next) => start = next,
                                None => return Ok(()),
                            }
                        }
                    }
                }
                Ended::Failed(error) => {
                    self.commit_pending(&mut position, false).await?;
                    return Err(error);
                }
            }
        }
    }

    pub(super) fn notify(&self, notice: Notice) {
        if let Some(f) = &self.on_notice {
            f(notice);
        }
    }
}
