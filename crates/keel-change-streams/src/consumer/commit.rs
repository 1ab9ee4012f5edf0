//! Commit decisions: when the commit policy says the handled position is stored, and the
//! store call itself (retried until stored, never reported before).

use std::time::Duration;

use keel_core::Error;
use mongodb::bson::Timestamp;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::{CommitError, CommitPolicy, status::bump, token::Token};

use super::{Engine, Position, now_timestamp};

impl<T> Engine<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(super) async fn handled(
        &self,
        position: &mut Position,
        token: Token,
        cluster_time: Option<Timestamp>,
        n: u32,
    ) -> Result<(), Error> {
        self.stats
            .handled
            .fetch_add(u64::from(n), std::sync::atomic::Ordering::Relaxed);
        self.meters.handled.increment(u64::from(n));
        self.stats.progress.mark();
        if let Some(ts) = cluster_time {
            position.last_cluster_time = Some(ts);
            let lag = now_timestamp().time.saturating_sub(ts.time);
            self.meters.lag.set(f64::from(lag));
        }
        position.pending = Some((token, position.last_cluster_time));
        position.since_commit = position.since_commit.saturating_add(n);
        let due = match self.commit {
            CommitPolicy::EveryEvent => true,
            CommitPolicy::EveryN(limit) => position.since_commit >= limit,
            CommitPolicy::Every(period) => position.last_commit.elapsed() >= period,
            CommitPolicy::EveryBatch => false,
        };
        if due {
            self.commit_now(position).await?;
        }
        Ok(())
    }

    /// Commits at the end of a batch when the policy says so, or always (`end_of_batch` false:
    /// shutdown, stop).
    pub(super) async fn commit_pending(
        &self,
        position: &mut Position,
        end_of_batch: bool,
    ) -> Result<(), Error> {
        let due = !end_of_batch
            || match self.commit {
                CommitPolicy::EveryBatch => true,
                CommitPolicy::Every(period) => position.last_commit.elapsed() >= period,
                CommitPolicy::EveryEvent | CommitPolicy::EveryN(_) => false,
            };
        if due {
            self.commit_now(position).await?;
        }
        Ok(())
    }

    /// Stores the pending token, retrying store failures with backoff (never reporting a
    /// checkpoint as stored before the store said so). `Ok(false)`: nothing new to commit.
    pub(super) async fn commit_now(&self, position: &mut Position) -> Result<bool, Error> {
        let Some((token, cluster_time)) = position.pending.clone() else {
            return Ok(false);
        };
        let token = token.to_document()?;
        if position.stored.as_ref().is_some_and(|c| c.token == token) {
            position.pending = None;
            return Ok(false);
        }
        let expected = position.stored.as_ref().map_or(0, |c| c.version);
        let mut previous = Duration::ZERO;
        let mut attempt = 0;
        loop {
            match self
                .store
                .commit(&self.name, expected, &token, cluster_time, self.fence)
                .await
            {
                Ok(checkpoint) => {
                    self.stats.checkpoint_stored(
                        crate::token_time(&checkpoint.token).or(checkpoint.cluster_time),
                    );
                    bump(&self.stats.commits);
                    self.stats.committed_now();
                    self.meters.checkpoint_age.set(0.0);
                    position.stored = Some(checkpoint);
                    position.pending = None;
                    position.since_commit = 0;
                    position.last_commit = Instant::now();
                    return Ok(true);
                }
                Err(e @ CommitError::Store { .. }) => {
                    tracing::warn!(consumer = %self.name, "checkpoint commit failed, retrying: {e}");
                    let delay =
                        self.spec
                            .resume_backoff
                            .delay(attempt, previous, rand::random::<f64>());
                    previous = delay;
                    attempt = attempt.saturating_add(1);
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(Error::config(e.to_string())),
            }
        }
    }
}
