//! The cursor task: opens the driver's `ChangeStream` through `Keel::run`, reads it ahead of the
//! handler into a bounded channel, and re-opens it by the specification's resume rules, paced by
//! a backoff and gated by `Keel::ready` so an outage is not a resume storm.
//!
//! Why the driver's `ChangeStream` and not raw `aggregate`/`getMore`: it already implements the
//! specification's single resume, server selection with the original read preference, the
//! session, `killCursors`, and the cached token ("Updating the Cached Resume Token": the
//! `postBatchResumeToken` after the last event of a batch and after an empty batch, else the
//! event `_id`), which `ChangeStream::resume_token()` exposes after each `next_if_any()`.
//! Keel adds what it lacks: a durable token and resumes beyond the first.

use std::{sync::Arc, time::Duration};

use keel_core::{Error, ErrorFacts, Operation};
use mongodb::{
    bson::{Bson, Document, RawDocumentBuf, from_bson},
    change_stream::event::ResumeToken,
    options::{ChangeStreamOptions, FullDocumentBeforeChangeType, FullDocumentType},
};
use mongokeel::Keel;
use tokio::sync::{mpsc, watch};

use crate::{
    ConsumerStatus, WatchTarget,
    event::RawEvent,
    metrics,
    pacing::{Attempts, Empty, QuickEmpties, ResumeBudget},
    resume::{self, StartPoint},
    status::{ConsumerStats, bump},
    token::Token,
};

/// What the reader hands to the handler side, in server order.
#[derive(Debug)]
pub(crate) enum Feed {
    /// An event (as the server's bytes) and the cached token after it.
    Event { raw: RawEvent, token: Token },
    /// An empty batch and its `postBatchResumeToken` (nothing to handle before it).
    Quiet { token: Token },
    /// The stream ended (after an `invalidate`).
    End,
    /// The stream failed and cannot be resumed.
    Failed(Error),
}

/// What the stream is opened with.
#[derive(Clone, Debug)]
pub(crate) struct StreamSpec {
    pub(crate) target: WatchTarget,
    pub(crate) pipeline: Vec<Document>,
    pub(crate) full_document: Option<FullDocumentType>,
    pub(crate) full_document_before_change: Option<FullDocumentBeforeChangeType>,
    pub(crate) batch_size: Option<u32>,
    pub(crate) max_await_time: Option<Duration>,
    pub(crate) resume_backoff: keel_retry::Backoff,
    /// Shared by every stream and snapshot read of the consumer.
    pub(crate) resume_budget: ResumeBudget,
}

pub(crate) struct Reader {
    pub(crate) keel: Keel,
    pub(crate) name: Arc<str>,
    pub(crate) spec: Arc<StreamSpec>,
    pub(crate) stats: Arc<ConsumerStats>,
    pub(crate) status: watch::Sender<ConsumerStatus>,
}

fn document_to_token(doc: &Document) -> Result<ResumeToken, Error> {
    from_bson(Bson::Document(doc.clone()))
        .map_err(|e| Error::config(format!("the stored resume token is not usable: {e}")))
}

fn options(spec: &StreamSpec, start: &StartPoint) -> Result<ChangeStreamOptions, Error> {
    let mut options = ChangeStreamOptions::default();
    options.full_document = spec.full_document.clone();
    options.full_document_before_change = spec.full_document_before_change.clone();
    options.batch_size = spec.batch_size;
    options.max_await_time = spec.max_await_time;
    match start {
        StartPoint::Now => {}
        StartPoint::ResumeAfter(t) => options.resume_after = Some(document_to_token(t)?),
        StartPoint::StartAfter(t) => options.start_after = Some(document_to_token(t)?),
        StartPoint::AtOperationTime(at) => options.start_at_operation_time = Some(*at),
    }
    Ok(options)
}

/// Read as raw BSON: the driver then only copies each event's bytes, and the bytes go to the
/// handler side untouched, where `ChangeEvent::from_raw` reads the fields once (no `Document`
/// of the whole event is built unless the handler asks for `event.raw`).
type Stream = mongodb::change_stream::ChangeStream<RawDocumentBuf>;

async fn open(keel: &Keel, spec: &Arc<StreamSpec>, start: &StartPoint) -> Result<Stream, Error> {
    let options = options(spec, start)?;
    let spec = Arc::clone(spec);
    keel.run(Operation::read("change_stream.watch", move |client| {
        let (spec, options) = (Arc::clone(&spec), options.clone());
        async move {
            let pipeline = spec.pipeline.clone();
            let stream = match &spec.target {
                WatchTarget::Collection {
                    database,
                    collection,
                } => {
                    client
                        .database(database)
                        .collection::<Document>(collection)
                        .watch()
                        .pipeline(pipeline)
                        .with_options(options)
                        .await?
                }
                WatchTarget::Database(database) => {
                    client
                        .database(database)
                        .watch()
                        .pipeline(pipeline)
                        .with_options(options)
                        .await?
                }
                WatchTarget::Deployment => {
                    client
                        .watch()
                        .pipeline(pipeline)
                        .with_options(options)
                        .await?
                }
            };
            Ok(stream.with_type::<RawDocumentBuf>())
        }
    }))
    .await
}

/// The deployment's `maxWireVersion`, from `hello` on the primary (the member the stream's
/// `aggregate` and `getMore`s run on). The specification wants the wire version of the
/// connection the failed command ran on ("Resumable Error": "the driver MUST use the wire
/// version of the connection used to do the initial aggregate or the getMore that resulted in
/// the error"); the driver keeps that private, so the consumer asks the same server after each
/// open. `None` when `hello` fails (the rule then falls back to the error's labels).
async fn wire_version(keel: &Keel) -> Option<i32> {
    let reply = admin_command(keel, "change_stream.hello", "hello").await?;
    match reply.get("maxWireVersion") {
        Some(Bson::Int32(v)) => Some(*v),
        Some(Bson::Int64(v)) => i32::try_from(*v).ok(),
        _ => None,
    }
}

/// `{<command>: 1}` on `admin` through `Keel::run`; `None` when it fails.
async fn admin_command(keel: &Keel, name: &'static str, command: &'static str) -> Option<Document> {
    keel.run(Operation::command(name, true, move |client| async move {
        client
            .database("admin")
            .run_command(mongodb::bson::doc! {command: 1})
            .await
    }))
    .await
    .ok()
}

/// Whether a failure of `Keel::run` (opening) or of the stream lets the consumer resume, by the
/// server's wire version when known.
fn resumable(error: &Error, on_aggregate: bool, wire: Option<i32>) -> bool {
    match error.driver_error() {
        Some(driver) => {
            let facts = ErrorFacts::from_driver(driver);
            resume::consumer_resumes(&facts, wire, on_aggregate)
        }
        // Keel's own failures (breaker open, overloaded, deadline, unreachable) are outages,
        // not server errors: wait them out. Configuration errors are not.
        None => !matches!(error.kind(), keel_core::ErrorKind::Config),
    }
}

/// The server's `operationTime` now (from a `ping`), where a stream started "now" begins.
/// `None` when the server gives none or the ping fails.
async fn operation_time(keel: &Keel) -> Option<mongodb::bson::Timestamp> {
    let reply = admin_command(keel, "change_stream.operation_time", "ping").await?;
    reply.get_timestamp("operationTime").ok()
}

/// The start point a stream is opened with: never [`StartPoint::Now`] when the server tells
/// its operation time. Why: the driver's own resume (mongodb 3.9.1,
/// `operation/aggregate/change_stream.rs` `build`) takes the cached token out of its resume
/// data when it builds the `aggregate`; when that `aggregate` is retried (a retryable read
/// after a network error) the rebuilt command has no token and falls back to the stream's
/// original options. For a stream opened without any start point that is `{$changeStream: {}}`:
/// a stream from the present, silently past every event since the last one read (keel demo
/// runs lost the first writes after a connection reset this way). With an explicit start in
/// the original options the fallback replays from there instead: duplicates, which at least
/// once allows, never a gap.
async fn explicit(keel: &Keel, start: StartPoint) -> StartPoint {
    match start {
        // Just after the operation time: `startAtOperationTime` is inclusive, and the entry at
        // that time was written before "now".
        StartPoint::Now => match operation_time(keel).await {
            Some(at) => StartPoint::AtOperationTime(just_after(at)),
            None => StartPoint::Now,
        },
        other => other,
    }
}

/// The first cluster time after `at`.
fn just_after(at: mongodb::bson::Timestamp) -> mongodb::bson::Timestamp {
    match at.increment.checked_add(1) {
        Some(increment) => mongodb::bson::Timestamp {
            time: at.time,
            increment,
        },
        None => mongodb::bson::Timestamp {
            time: at.time.saturating_add(1),
            increment: 0,
        },
    }
}

impl Reader {
    pub(crate) async fn run(self, original: StartPoint, feed: mpsc::Sender<Feed>) {
        let original = explicit(&self.keel, original).await;
        let mut start = original.clone();
        // Raw until a resume needs it as a `Document` (converting every event's token was a
        // large per-event cost).
        let mut cached = resume::initial_cached_token(&original).map(Token::from);
        let mut returned_any = false;
        let mut attempts = Attempts::default();
        // Kept across resumes: a resume from a fragment's token continues with the next one.
        let mut reassembly = crate::split::Reassembly::default();
        let mut wire = None;
        let mut empties = QuickEmpties::new(self.spec.max_await_time);
        loop {
            let stream = match open(&self.keel, &self.spec, &start).await {
                Ok(stream) => stream,
                Err(error) if resumable(&error, true, wire) => {
                    self.pause(&mut attempts, &error).await;
                    continue;
                }
                Err(error) => {
                    let _ = feed.send(Feed::Failed(error)).await;
                    return;
                }
            };
            self.spec.resume_budget.succeeded();
            if let Some(v) = wire_version(&self.keel).await {
                wire = Some(v);
            }
            let _ = self.status.send(ConsumerStatus::Running);
            let mut stream = stream;
            empties.reset();
            if let Some(token) = stream.resume_token().as_ref().and_then(Token::from_driver) {
                cached = Some(token);
            }
            loop {
                let asked = tokio::time::Instant::now();
                match stream.next_if_any().await {
                    Ok(Some(bytes)) => {
                        attempts.reset();
                        empties.reset();
                        returned_any = true;
                        let token =
                            match stream.resume_token().as_ref().and_then(Token::from_driver) {
                                Some(token) => token,
                                None => {
                                    let _ = feed
                                        .send(Feed::Failed(crate::event::missing_resume_token()))
                                        .await;
                                    return;
                                }
                            };
                        cached = Some(token.clone());
                        let raw = match reassembly.push(bytes) {
                            Ok(Some(raw)) => raw,
                            Ok(None) => continue,
                            Err(error) => {
                                let _ = feed.send(Feed::Failed(error)).await;
                                return;
                            }
                        };
                        let invalidate = matches!(raw.get_str("operationType"), Ok("invalidate"));
                        let raw = RawEvent::new(raw);
                        if feed.send(Feed::Event { raw, token }).await.is_err() {
                            return;
                        }
                        if invalidate {
                            let _ = feed.send(Feed::End).await;
                            return;
                        }
                    }
                    Ok(None) => {
                        match empties.empty(asked.elapsed()) {
                            // A `getMore` round that succeeded.
                            Empty::Awaited => {
                                attempts.reset();
                                self.spec.resume_budget.succeeded();
                            }
                            Empty::Quick => {}
                            Empty::DriverResume => {
                                self.pause_class(
                                    &mut attempts,
                                    "driver_resume",
                                    &"the driver \
                                     re-opened the stream by itself (a getMore keeps failing)",
                                )
                                .await;
                                let _ = self.status.send(ConsumerStatus::Running);
                            }
                        }
                        if let Some(token) =
                            stream.resume_token().as_ref().and_then(Token::from_driver)
                        {
                            cached = Some(token.clone());
                            // Inside a split event the token is no checkpoint.
                            if !reassembly.in_progress()
                                && feed.send(Feed::Quiet { token }).await.is_err()
                            {
                                return;
                            }
                        }
                        if !stream.is_alive() {
                            let _ = feed.send(Feed::End).await;
                            return;
                        }
                    }
                    Err(driver) => {
                        let error = Error::from_driver(driver);
                        if !resumable(&error, false, wire) {
                            let _ = feed.send(Feed::Failed(error)).await;
                            return;
                        }
                        let token = match cached.as_ref().map(Token::to_document).transpose() {
                            Ok(token) => token,
                            Err(error) => {
                                let _ = feed.send(Feed::Failed(error)).await;
                                return;
                            }
                        };
                        start = resume::resume_start(&original, token.as_ref(), returned_any, None);
                        self.pause(&mut attempts, &error).await;
                        break;
                    }
                }
            }
        }
    }

    /// Counts a resume, waits the backoff and for the resume budget, then until `Keel` lets
    /// calls through again.
    async fn pause(&self, attempts: &mut Attempts, error: &Error) {
        self.pause_class(attempts, error.class().as_str(), error)
            .await;
    }

    /// [`pause`](Self::pause) for a resume of class `class` because of `why`.
    async fn pause_class(
        &self,
        attempts: &mut Attempts,
        class: &'static str,
        why: &(dyn std::fmt::Display + Sync),
    ) {
        bump(&self.stats.resumes);
        metrics::resumed(&self.name, class);
        let attempt = attempts.count();
        tracing::warn!(consumer = %self.name, class, attempt, "change stream resuming: {why}");
        let _ = self.status.send(ConsumerStatus::Resuming {
            attempt: attempt + 1,
            class,
        });
        attempts
            .wait(&self.spec.resume_backoff, &self.spec.resume_budget)
            .await;
        // Connected and breaker closed; a closed client ends the consumer with the next open.
        let _ = self.keel.ready().await;
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::Timestamp;

    use super::just_after;

    #[test]
    fn just_after_is_the_next_increment_or_the_next_second() {
        let at = Timestamp {
            time: 10,
            increment: 4,
        };
        assert_eq!(
            just_after(at),
            Timestamp {
                time: 10,
                increment: 5
            }
        );
        let last = Timestamp {
            time: 10,
            increment: u32::MAX,
        };
        assert_eq!(
            just_after(last),
            Timestamp {
                time: 11,
                increment: 0
            }
        );
    }
}
