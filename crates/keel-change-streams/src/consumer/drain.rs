//! The handler side of the feed: takes what the reader read, as batches (or per document key
//! with `partition_by_document_key`), hands it to the handler, and moves the position.

use std::{sync::Arc, time::Duration};

use futures_util::future::{BoxFuture, FutureExt};
use keel_core::Error;
use mongodb::bson::Document;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::{
    ChangeEvent, CommitPolicy, event::RawEvent, partition, reader::Feed, status::bump, token::Token,
};

use super::{Ended, Engine, Handler, Position};

impl<T> Engine<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(super) async fn drain(
        &mut self,
        mut rx: mpsc::Receiver<Feed>,
        position: &mut Position,
    ) -> Ended {
        loop {
            let lost = &mut self.lease_lost;
            let lease_lost = async {
                match lost {
                    Some(lost) => {
                        let _ = lost.wait_for(|l| *l).await;
                    }
                    None => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                biased;
                () = lease_lost => return Ended::LeaseLost,
                changed = self.stop.changed() => {
                    if changed.is_err() || *self.stop.borrow() { return Ended::Shutdown; }
                    continue;
                }
                item = rx.recv() => item,
            };
            let Some(first) = first else {
                return Ended::Failed(Error::config("the change stream reader stopped"));
            };
            // Everything already read is one batch; an end or failure closes it.
            let mut events = Vec::new();
            let mut tail = None;
            let mut quiet = None;
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Feed::Event { raw, token } => events.push((raw, token)),
                    Feed::Quiet { token } => quiet = Some(token),
                    other => {
                        tail = Some(other);
                        break;
                    }
                }
                if quiet.is_some() {
                    break;
                }
                next = rx.try_recv().ok();
            }
            let mut invalidated = None;
            if !events.is_empty() {
                self.stats.progress.busy();
                if let Some((raw, token)) = events.last()
                    && matches!(raw.as_raw().get_str("operationType"), Ok("invalidate"))
                {
                    invalidated = Some(token.clone());
                }
                if let Err(error) = self.handle(events, position).await {
                    if self.interrupted() {
                        return Ended::Shutdown;
                    }
                    return Ended::Failed(error);
                }
                if let Err(error) = self.commit_pending(position, true).await {
                    return Ended::Failed(error);
                }
                self.stats.progress.idle();
            }
            if let Some(token) = quiet {
                self.stats.progress.idle();
                // Nothing unhandled precedes a quiet batch's token (the feed is ordered).
                position.pending = Some((token, position.last_cluster_time));
                if position.last_commit.elapsed() >= self.heartbeat {
                    match self.commit_now(position).await {
                        Ok(true) => bump(&self.stats.heartbeats),
                        Ok(false) => {}
                        Err(error) => return Ended::Failed(error),
                    }
                }
                self.meters
                    .checkpoint_age
                    .set(position.last_commit.elapsed().as_secs_f64());
            }
            match tail {
                Some(Feed::End) => {
                    return Ended::Invalidated(invalidated.unwrap_or_else(|| {
                        position
                            .pending
                            .as_ref()
                            .map_or_else(|| Document::new().into(), |p| p.0.clone())
                    }));
                }
                Some(Feed::Failed(error)) => return Ended::Failed(error),
                _ => {}
            }
        }
    }

    /// [`drain`](Self::drain) with `partition_by_document_key(n)`: events go to a
    /// [`partition::Scheduler`] as they are read; each finished prefix moves the position.
    pub(super) async fn drain_partitioned(
        &self,
        mut rx: mpsc::Receiver<Feed>,
        position: &mut Position,
    ) -> Ended {
        /// At least this often the finished prefix is committed under `EveryBatch`.
        const BUSY_COMMIT: Duration = Duration::from_secs(1);
        let mut stop = self.stop.clone();
        let mut lost = self.lease_lost.clone();
        let Handler::Each(handler) = &self.handler else {
            return Ended::Failed(Error::config("partitioning needs a per-event handler"));
        };
        let run_one = |event: ChangeEvent<T>| -> BoxFuture<'_, Result<(), Error>> {
            let handler = Arc::clone(handler);
            async move { self.run_event(&handler, event).await }.boxed()
        };
        let mut scheduler = partition::Scheduler::new(&run_one, self.partitions, self.buffer);
        // After the stream ended: finish what runs, then end this way.
        let mut ending: Option<Ended> = None;
        let mut invalidated = None;
        loop {
            if ending.is_some() && scheduler.idle() {
                return match ending.take() {
                    Some(Ended::Invalidated(token)) => {
                        Ended::Invalidated(invalidated.take().unwrap_or(token))
                    }
                    Some(other) => other,
                    None => Ended::Shutdown,
                };
            }
            let lease_lost = async {
                match lost.as_mut() {
                    Some(lost) => {
                        let _ = lost.wait_for(|l| *l).await;
                    }
                    None => std::future::pending().await,
                }
            };
            let accepting = ending.is_none() && scheduler.accepting();
            let advance = tokio::select! {
                biased;
                () = lease_lost => return Ended::LeaseLost,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() { return Ended::Shutdown; }
                    continue;
                }
                done = scheduler.next(), if !scheduler.idle() => match done {
                    Some(Ok(advance)) => advance,
                    Some(Err(_)) if self.interrupted() => return Ended::Shutdown,
                    Some(Err(error)) => return Ended::Failed(error),
                    None => None,
                },
                item = rx.recv(), if accepting => match item {
                    Some(Feed::Event { raw, token }) => {
                        if matches!(raw.as_raw().get_str("operationType"), Ok("invalidate")) {
                            invalidated = Some(token.clone());
                        }
                        let event = match ChangeEvent::<T>::from_raw(raw) {
                            Ok(event) => event,
                            Err(error) => return Ended::Failed(error),
                        };
                        self.stats.progress.busy();
                        scheduler.push(partition::Item {
                            key: partition::partition_key(event.raw.as_raw()),
                            token,
                            cluster_time: event.cluster_time,
                            event,
                        });
                        None
                    }
                    Some(Feed::Quiet { token }) => {
                        if scheduler.idle() {
                            self.stats.progress.idle();
                        }
                        let advance = scheduler.marker(token, position.last_cluster_time);
                        if let Some(a) = advance {
                            // Only a quiet token: nothing was handled, a heartbeat may be due.
                            position.pending = Some((a.token.clone(), position.last_cluster_time));
                            if a.count == 0 {
                                if position.last_commit.elapsed() >= self.heartbeat {
                                    match self.commit_now(position).await {
                                        Ok(true) => bump(&self.stats.heartbeats),
                                        Ok(false) => {}
                                        Err(error) => return Ended::Failed(error),
                                    }
                                }
                                None
                            } else {
                                Some(a)
                            }
                        } else {
                            None
                        }
                    }
                    Some(Feed::End) => {
                        ending = Some(Ended::Invalidated(
                            position
                                .pending
                                .as_ref()
                                .map_or_else(|| Document::new().into(), |p| p.0.clone()),
                        ));
                        None
                    }
                    Some(Feed::Failed(error)) => return Ended::Failed(error),
                    None => return Ended::Failed(Error::config("the change stream reader stopped")),
                },
            };
            if let Some(a) = advance {
                if let Err(error) = self
                    .handled(position, a.token, a.cluster_time, a.count)
                    .await
                {
                    return Ended::Failed(error);
                }
                let caught_up = scheduler.idle() && rx.is_empty();
                if caught_up {
                    self.stats.progress.idle();
                }
                let due = match self.commit {
                    CommitPolicy::EveryBatch => {
                        caught_up || position.last_commit.elapsed() >= BUSY_COMMIT
                    }
                    _ => false,
                };
                if due && let Err(error) = self.commit_now(position).await {
                    return Ended::Failed(error);
                }
            }
        }
    }

    pub(super) async fn handle(
        &self,
        events: Vec<(RawEvent, Token)>,
        position: &mut Position,
    ) -> Result<(), Error> {
        let mut parsed = Vec::with_capacity(events.len());
        for (raw, token) in events {
            parsed.push((ChangeEvent::<T>::from_raw(raw)?, token));
        }
        match &self.handler {
            Handler::Each(handler) => {
                for (event, token) in parsed {
                    let cluster_time = event.cluster_time;
                    self.run_event(handler, event).await?;
                    self.handled(position, token, cluster_time, 1).await?;
                }
            }
            Handler::Batch(handler) => {
                let Some((last, token)) = parsed.last().map(|(e, t)| (e.cluster_time, t.clone()))
                else {
                    return Ok(());
                };
                let n = u32::try_from(parsed.len()).unwrap_or(u32::MAX);
                let events: Vec<_> = parsed.into_iter().map(|(e, _)| e).collect();
                let handler = Arc::clone(handler);
                if let Err((error, attempts)) = self.attempts(|| handler(events.clone())).await? {
                    for event in events {
                        self.fail(event, error.clone(), attempts).await?;
                    }
                }
                self.handled(position, token, last, n).await?;
            }
        }
        Ok(())
    }
}
