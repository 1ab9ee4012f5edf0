//! `MongoCheckpointStore`: checkpoints in a `keel_checkpoints` collection of the deployment
//! itself, one document per consumer, committed with a compare-and-set update.
//!
//! Document: `{_id: NAME, token, version, clusterTime, committedAt, lease: {owner, expiresAt,
//! fencing}}`. The lease fields are reserved for leases; a commit with a fencing token has
//! `lease.fencing` in its filter, so a holder that lost its lease can no longer commit.

use std::{sync::Arc, time::SystemTime};

use futures_util::future::{BoxFuture, FutureExt};
use keel_core::{Error, Operation};
use mongodb::bson::{Bson, DateTime, Document, Timestamp, doc};
use mongokeel::Keel;

use super::{Checkpoint, CheckpointStore, CommitError, validate_name};

/// The collection checkpoints (and leases) are kept in.
pub const CHECKPOINT_COLLECTION: &str = "keel_checkpoints";

/// Checkpoints in MongoDB, through the `Keel` stack (retry, breaker, deadline).
#[derive(Clone, Debug)]
pub struct MongoCheckpointStore {
    keel: Keel,
    database: Arc<str>,
}

impl MongoCheckpointStore {
    /// A store in `database.keel_checkpoints`.
    pub fn new(keel: Keel, database: &str) -> Self {
        Self {
            keel,
            database: database.into(),
        }
    }

    async fn find(&self, consumer: &str) -> Result<Option<Document>, Error> {
        let db = Arc::clone(&self.database);
        let id = consumer.to_owned();
        self.keel
            .run(Operation::read("keel_checkpoints.find_one", move |c| {
                let db = Arc::clone(&db);
                let id = id.clone();
                async move {
                    c.database(&db)
                        .collection::<Document>(CHECKPOINT_COLLECTION)
                        .find_one(doc! {"_id": id})
                        .await
                }
            }))
            .await
    }
}

pub(crate) fn parse(doc: &Document) -> Option<Checkpoint> {
    let token = doc.get_document("token").ok()?.clone();
    let version = match doc.get("version") {
        Some(Bson::Int64(v)) => u64::try_from(*v).ok()?,
        Some(Bson::Int32(v)) => u64::try_from(*v).ok()?,
        _ => return None,
    };
    Some(Checkpoint {
        token,
        version,
        cluster_time: doc.get_timestamp("clusterTime").ok(),
        committed_at: doc
            .get_datetime("committedAt")
            .map_or(SystemTime::UNIX_EPOCH, |d| d.to_system_time()),
    })
}

fn version_bson(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

impl CheckpointStore for MongoCheckpointStore {
    fn load<'a>(&'a self, consumer: &'a str) -> BoxFuture<'a, Result<Option<Checkpoint>, Error>> {
        async move {
            validate_name(consumer)?;
            Ok(self.find(consumer).await?.as_ref().and_then(parse))
        }
        .boxed()
    }

    fn commit<'a>(
        &'a self,
        consumer: &'a str,
        expected: u64,
        token: &'a Document,
        cluster_time: Option<Timestamp>,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<Checkpoint, CommitError>> {
        async move {
            let store_error = |source| CommitError::Store {
                consumer: consumer.to_owned(),
                source,
            };
            validate_name(consumer).map_err(store_error)?;
            let now = SystemTime::now();
            let mut filter = doc! {"_id": consumer};
            if expected == 0 {
                // Never committed: the document may not exist, or exist with only a lease.
                filter.insert("token", doc! {"$exists": false});
            } else {
                filter.insert("version", version_bson(expected));
            }
            if let Some(fence) = fence {
                filter.insert("lease.fencing", version_bson(fence));
            }
            let mut set = doc! {
                "token": token.clone(),
                "version": version_bson(expected + 1),
                "committedAt": DateTime::from_system_time(now),
            };
            if let Some(ts) = cluster_time {
                set.insert("clusterTime", Bson::Timestamp(ts));
            }
            // Upsert only a first commit without a lease; with a lease the document exists.
            let upsert = expected == 0 && fence.is_none();
            let db = Arc::clone(&self.database);
            let applied = self
                .keel
                .run(Operation::write(
                    "keel_checkpoints.commit",
                    // A repeat after an unseen success matches nothing and is read back below.
                    true,
                    move |c| {
                        let db = Arc::clone(&db);
                        let (filter, set) = (filter.clone(), set.clone());
                        async move {
                            let result = c
                                .database(&db)
                                .collection::<Document>(CHECKPOINT_COLLECTION)
                                .update_one(filter, doc! {"$set": set})
                                .upsert(upsert)
                                .await;
                            match result {
                                Ok(r) => Ok(r.matched_count == 1 || r.upserted_id.is_some()),
                                // The upsert raced a document created meanwhile.
                                Err(e) if is_duplicate_key(&e) => Ok(false),
                                Err(e) => Err(e),
                            }
                        }
                    },
                ))
                .await
                .map_err(store_error)?;
            let checkpoint = Checkpoint {
                token: token.clone(),
                version: expected + 1,
                cluster_time,
                committed_at: now,
            };
            if applied {
                return Ok(checkpoint);
            }
            // Nothing matched: either an earlier attempt of this very commit applied (its reply
            // was lost), or someone else moved the checkpoint or took the lease.
            let current = self.find(consumer).await.map_err(store_error)?;
            let stored = current.as_ref().and_then(parse);
            if let Some(stored) = &stored
                && stored.version == expected + 1
                && &stored.token == token
            {
                return Ok(checkpoint);
            }
            if let Some(fence) = fence {
                let holder = current
                    .as_ref()
                    .and_then(|d| d.get_document("lease").ok())
                    .and_then(|l| l.get_i64("fencing").ok());
                if holder != Some(version_bson(fence)) {
                    return Err(CommitError::Fenced {
                        consumer: consumer.to_owned(),
                        fence,
                    });
                }
            }
            Err(CommitError::Conflict {
                consumer: consumer.to_owned(),
                expected,
                found: stored.map(|s| s.version),
            })
        }
        .boxed()
    }

    fn acquire_lease<'a>(
        &'a self,
        consumer: &'a str,
        owner: &'a str,
        duration: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, Error>> {
        async move {
            validate_name(consumer)?;
            // Free, expired, or ours: take it with a fencing token one above the last holder's.
            // Expiry is judged by this process's wall clock, so instances need roughly
            // synchronised clocks (within a fraction of the lease time).
            let filter = doc! {
                "_id": consumer,
                "$or": [
                    {"lease.owner": owner},
                    {"lease.expiresAt": {"$lt": DateTime::now()}},
                    {"lease": {"$exists": false}},
                ],
            };
            let update = doc! {
                "$set": {"lease.owner": owner, "lease.expiresAt": expiry(duration)},
                "$inc": {"lease.fencing": 1_i64},
            };
            if !self
                .lease_update("keel_checkpoints.acquire_lease", filter, update, true)
                .await?
            {
                return Ok(None);
            }
            let lease = self.find(consumer).await?;
            let lease = lease.as_ref().and_then(|d| d.get_document("lease").ok());
            match lease {
                Some(l) if l.get_str("owner") == Ok(owner) => Ok(l
                    .get_i64("fencing")
                    .ok()
                    .and_then(|f| u64::try_from(f).ok())),
                _ => Ok(None),
            }
        }
        .boxed()
    }

    fn renew_lease<'a>(
        &'a self,
        consumer: &'a str,
        owner: &'a str,
        fence: u64,
        duration: std::time::Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        async move {
            let filter =
                doc! {"_id": consumer, "lease.owner": owner, "lease.fencing": version_bson(fence)};
            let update = doc! {"$set": {"lease.expiresAt": expiry(duration)}};
            self.lease_update("keel_checkpoints.renew_lease", filter, update, false)
                .await
        }
        .boxed()
    }

    fn clear<'a>(&'a self, consumer: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            validate_name(consumer)?;
            let db = Arc::clone(&self.database);
            let id = consumer.to_owned();
            self.keel
                .run(Operation::write("keel_checkpoints.clear", true, move |c| {
                    let db = Arc::clone(&db);
                    let id = id.clone();
                    async move {
                        c.database(&db)
                            .collection::<Document>(CHECKPOINT_COLLECTION)
                            .update_one(
                                doc! {"_id": id},
                                doc! {"$unset": {"token": "", "version": "", "clusterTime": "", "committedAt": ""}},
                            )
                            .await
                    }
                }))
                .await?;
            Ok(())
        }
        .boxed()
    }
}

impl MongoCheckpointStore {
    async fn lease_update(
        &self,
        name: &'static str,
        filter: Document,
        update: Document,
        upsert: bool,
    ) -> Result<bool, Error> {
        let db = Arc::clone(&self.database);
        self.keel
            .run(Operation::write(name, true, move |c| {
                let (db, filter, update) = (Arc::clone(&db), filter.clone(), update.clone());
                async move {
                    let result = c
                        .database(&db)
                        .collection::<Document>(CHECKPOINT_COLLECTION)
                        .update_one(filter, update)
                        .upsert(upsert)
                        .await;
                    match result {
                        Ok(r) => Ok(r.matched_count == 1 || r.upserted_id.is_some()),
                        // Another owner holds an unexpired lease: the upsert found no match
                        // and collided with the existing document.
                        Err(e) if is_duplicate_key(&e) => Ok(false),
                        Err(e) => Err(e),
                    }
                }
            }))
            .await
    }
}

fn expiry(duration: std::time::Duration) -> DateTime {
    DateTime::from_system_time(SystemTime::now() + duration)
}

pub(crate) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    keel_core::ErrorFacts::from_driver(e).code == Some(11000)
}
