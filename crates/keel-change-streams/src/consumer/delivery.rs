//! Handler calls: retries with backoff (a shutdown cuts the wait short), then the failure
//! policy (stop, dead letter, fallback).

use std::time::Duration;

use futures_util::future::BoxFuture;
use keel_core::{Error, Operation};
use mongodb::bson::{DateTime, Document, doc};
use serde::de::DeserializeOwned;

use crate::{ChangeEvent, FailurePolicy, HandlerRetry, metrics, status::bump};

use super::{EachFn, Engine};

impl<T> Engine<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Runs the per-event handler until it succeeds or `max_attempts` failed (backoff in
    /// between), then applies the failure policy. The event is moved into each call: what a
    /// retry or the policy needs is its shared raw document (an `Arc`, no copy: the copy kept
    /// for a retry was the largest per-event cost in a callgrind profile), parsed again only
    /// after a failure, and before a last attempt under the stop policy only its id is kept.
    pub(super) async fn run_event(
        &self,
        handler: &EachFn<T>,
        event: ChangeEvent<T>,
    ) -> Result<(), Error> {
        let mut previous = Duration::ZERO;
        let mut event = event;
        let mut attempt = 0;
        loop {
            let last = HandlerRetry::exhausted(self.max_attempts, attempt + 1);
            let keep = if last && matches!(self.on_failure, FailurePolicy::Stop) {
                Err(event.event_id().clone())
            } else {
                Ok(event.raw.clone())
            };
            let Err(error) = handler(event).await else {
                return Ok(());
            };
            bump(&self.stats.handler_errors);
            metrics::handler_error(&self.name);
            attempt += 1;
            let again = match keep {
                Err(id) => return Err(self.stop_error(&id, &error, attempt)),
                Ok(raw) => ChangeEvent::<T>::from_raw(raw)?,
            };
            if last {
                return self.fail(again, error, attempt).await;
            }
            event = again;
            let delay = self
                .retry
                .delay(attempt - 1, previous, rand::random::<f64>());
            previous = delay;
            self.retry_sleep(delay).await?;
        }
    }

    /// Waits between handler attempts; a shutdown ends the wait (the event stays uncommitted,
    /// so it is delivered again after a restart).
    pub(super) async fn retry_sleep(&self, delay: Duration) -> Result<(), Error> {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            _ = stop.wait_for(|s| *s) => {
                self.interrupted.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(Error::config(format!(
                    "consumer '{}' was shut down while retrying its handler",
                    self.name
                )))
            }
        }
    }

    /// Whether a handler retry was cut short by a shutdown (the drain then ends as one).
    pub(super) fn interrupted(&self) -> bool {
        self.interrupted.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn stop_error(&self, event_id: &Document, error: &str, attempts: u32) -> Error {
        Error::config(format!(
            "consumer '{}' stopped: its handler failed {attempts} times on event {event_id}: \
             {error}",
            self.name
        ))
    }

    /// Runs `call` until it succeeds or `max_attempts` failed, with backoff in between.
    /// `Ok(Err(..))`: every attempt failed; `Err`: shut down while waiting to retry.
    pub(super) async fn attempts<F>(&self, call: F) -> Result<Result<(), (String, u32)>, Error>
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>>,
    {
        let mut previous = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            let Err(error) = call().await else {
                return Ok(Ok(()));
            };
            bump(&self.stats.handler_errors);
            metrics::handler_error(&self.name);
            attempt = attempt.saturating_add(1);
            if HandlerRetry::exhausted(self.max_attempts, attempt) {
                return Ok(Err((error, attempt)));
            }
            let delay = self
                .retry
                .delay(attempt - 1, previous, rand::random::<f64>());
            previous = delay;
            self.retry_sleep(delay).await?;
        }
    }

    /// Applies the failure policy to an event whose handler failed every attempt.
    pub(super) async fn fail(
        &self,
        event: ChangeEvent<T>,
        error: String,
        attempts: u32,
    ) -> Result<(), Error> {
        match &self.on_failure {
            FailurePolicy::Stop => Err(self.stop_error(event.event_id(), &error, attempts)),
            FailurePolicy::Fallback(fallback) => fallback(event, error).await.map_err(|e| {
                Error::config(format!(
                    "consumer '{}' stopped: its fallback failed: {e}",
                    self.name
                ))
            }),
            FailurePolicy::DeadLetter {
                database,
                collection,
            } => {
                let record = doc! {
                    // One record per consumer and event, so a redelivery does not duplicate it.
                    "_id": {"consumer": self.name.as_ref(), "event": event.event_id().clone()},
                    "consumer": self.name.as_ref(),
                    "event": (*event.raw).clone(),
                    "error": error,
                    "attempts": i64::from(attempts),
                    "at": DateTime::now(),
                };
                let (db, coll) = (database.clone(), collection.clone());
                self.keel
                    .run(Operation::write(
                        "change_stream.dead_letter",
                        true,
                        move |c| {
                            let (db, coll, record) = (db.clone(), coll.clone(), record.clone());
                            async move {
                                let id = record.get("_id").cloned();
                                c.database(&db)
                                    .collection::<Document>(&coll)
                                    .replace_one(doc! {"_id": id}, record)
                                    .upsert(true)
                                    .await
                            }
                        },
                    ))
                    .await?;
                bump(&self.stats.dead_lettered);
                metrics::dead_lettered(&self.name);
                Ok(())
            }
        }
    }
}
