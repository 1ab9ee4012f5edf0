//! `Collection<T>`: typed CRUD whose methods build the right `Operation` kind, so retry safety is
//! automatic.

mod idempotence;
mod method;
mod read;
mod write;

use std::{
    marker::PhantomData,
    sync::{Arc, PoisonError, RwLock},
};

use keel_core::{OperationKind, OperationName};

use self::method::{Method, MethodNames};
use crate::{Keel, assembly::TypedRequest};

/// A typed collection. Cheap to clone.
///
/// Each attempt runs on the driver client `MongoService` hands it (the managed client's current
/// one), so a `reset()` of the managed client is picked up by the next attempt.
///
/// | method | operation kind | why |
/// |---|---|---|
/// | `find_one`, `find`, `find_stream`, `count_documents` | read | reads are always safe to repeat |
/// | `aggregate` | read; a non-idempotent write when it ends in `$out`/`$merge` | |
/// | `insert_one`, `insert_many` | idempotent write | Keel chooses the `_id` before sending; a duplicate `_id` on a retry means an earlier attempt applied |
/// | `update_one`, `update_many` | idempotent only with `$set`, `$unset`, `$setOnInsert`, `$min`, `$max` | `$inc`/`$push` twice is not once |
/// | `replace_one` | idempotent write | the end state is the replacement |
/// | `delete_one` | idempotent when the filter is an exact `_id` | otherwise a repeat deletes another document |
/// | `delete_many` | idempotent write | deleting twice leaves the same state |
/// | `find_one_and_update` | non-idempotent write | a repeat returns a different document |
pub struct Collection<T> {
    keel: Keel,
    target: Arc<Target>,
    _documents: PhantomData<fn() -> T>,
}

/// What a collection and its clones share: one allocation to clone per call.
#[derive(Debug)]
struct Target {
    database: String,
    collection: String,
    names: MethodNames,
    /// The driver's handle for this collection with the generation of the driver client it
    /// was built on, so an attempt clones one `Arc` instead of building a `Database` and a
    /// `Collection` (seven allocations per `find_one`); rebuilt when a reset moves on.
    handle: RwLock<Option<(u64, mongodb::Collection<mongodb::bson::Document>)>>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Self {
            keel: self.keel.clone(),
            target: Arc::clone(&self.target),
            _documents: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Collection({}.{})", self.database_name(), self.name())
    }
}

impl<T> Collection<T> {
    pub(crate) fn new(keel: Keel, database: &str, collection: &str) -> Self {
        let target = Target {
            database: database.to_owned(),
            collection: collection.to_owned(),
            names: MethodNames::new(database, collection),
            handle: RwLock::new(None),
        };
        Self {
            keel,
            target: Arc::new(target),
            _documents: PhantomData,
        }
    }

    /// The database name.
    pub fn database_name(&self) -> &str {
        &self.target.database
    }

    /// The collection name.
    pub fn name(&self) -> &str {
        &self.target.collection
    }

    /// The operation name for `method` (`"app.users.find_one"`): a metric label, so it comes
    /// from the code's fixed set of collections and methods, never from data.
    fn operation_name(&self, method: Method) -> OperationName {
        self.target.names.get(method)
    }

    /// The operation `method` runs, of `kind`, built as the stack's request (one shared closure
    /// and one boxed future per attempt).
    fn operation<R, F, Fut>(&self, method: Method, kind: OperationKind, run: F) -> TypedRequest<R>
    where
        R: Send + 'static,
        F: Fn(mongodb::Client) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = mongodb::error::Result<R>> + Send + 'static,
    {
        TypedRequest::new(self.operation_name(method), kind, run)
    }

    /// The driver's collection for an attempt, on the driver client of the managed client's
    /// current generation: the client `MongoService` handed the attempt (`_client`), unless a
    /// reset replaced it in between, and then the newer one, which is what the reset asked for.
    /// The handle is kept per generation, as
    /// [`ManagedClient::current_with_generation`](keel_pool_core::ManagedClient::current_with_generation)
    /// documents; reading the generation and the client together is what keeps a handle from
    /// being filed under the wrong one.
    fn on<D: Send + Sync>(&self, _client: &mongodb::Client) -> mongodb::Collection<D> {
        let managed = self.keel.client();
        let generation = managed.generation();
        {
            let kept = self
                .target
                .handle
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((kept_generation, handle)) = kept.as_ref()
                && *kept_generation == generation
            {
                return handle.clone_with_type();
            }
        }
        let (client, generation) = managed.current_with_generation();
        let handle = client
            .database(&self.target.database)
            .collection(&self.target.collection);
        let mut kept = self
            .target
            .handle
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // A concurrent attempt may have filed a newer generation meanwhile: keep the newest.
        if kept.as_ref().is_none_or(|(kept, _)| *kept < generation) {
            *kept = Some((generation, handle.clone()));
        }
        handle.clone_with_type()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use keel_config::KeelConfig;
    use keel_testkit::TestServer;
    use mongodb::bson::{Document, doc};

    use crate::Keel;

    #[tokio::test]
    async fn each_attempt_runs_on_the_client_of_the_current_generation() {
        let server = TestServer::start().await.unwrap();
        let config = KeelConfig::for_uri(server.uri()).unwrap();
        let keel = Keel::builder(config).build().await.unwrap();
        let items = keel.collection::<Document>("shop", "items");
        assert_eq!((items.database_name(), items.name()), ("shop", "items"));
        items.insert_one(doc! { "_id": 1 }).await.unwrap();

        keel.client().reset().unwrap();
        assert_eq!(keel.client().generation(), 1);
        items.insert_one(doc! { "_id": 2 }).await.unwrap();
        assert_eq!(items.count_documents(doc! {}).await.unwrap(), 2);
        keel.shutdown().await;
    }
}
