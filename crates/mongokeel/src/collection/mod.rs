//! `Collection<T>`: typed CRUD whose methods build the right `Operation` kind, so retry safety is
//! automatic.

mod idempotence;
mod method;
mod read;
mod write;

use std::{marker::PhantomData, sync::Arc};

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

    /// The driver's collection on `client`, the driver client `MongoService` handed the
    /// attempt: the one source of truth for which client an attempt uses.
    fn on<D: Send + Sync>(&self, client: &mongodb::Client) -> mongodb::Collection<D> {
        client
            .database(&self.target.database)
            .collection(&self.target.collection)
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
