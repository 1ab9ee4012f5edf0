//! `Collection<T>`: typed CRUD whose methods build the right `Operation` kind, so retry safety is
//! automatic.

mod driver;
mod idempotence;
mod method;
mod read;
mod write;

use std::{marker::PhantomData, sync::Arc};

use keel_core::OperationName;

use self::{
    driver::DriverCollection,
    method::{Method, MethodNames},
};
use crate::Keel;

/// A typed collection. Cheap to clone.
///
/// It keeps the driver's handle per driver client, so a `reset()` of the managed client is
/// picked up by the next attempt.
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
    driver: DriverCollection,
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
            driver: DriverCollection::new(keel.client().clone(), database, collection),
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
        self.target.driver.database()
    }

    /// The collection name.
    pub fn name(&self) -> &str {
        self.target.driver.collection()
    }

    /// The operation name for `method` (`"app.users.find_one"`): a metric label, so it comes
    /// from the code's fixed set of collections and methods, never from data.
    fn operation_name(&self, method: Method) -> OperationName {
        self.target.names.get(method)
    }

    /// The driver's collection on the managed client's current driver client.
    ///
    /// That is the client `MongoService` hands each attempt (it reads the same one), so the
    /// operations below take the cached handle and ignore their client argument.
    fn driver<D: Send + Sync>(&self) -> mongodb::Collection<D> {
        self.target.driver.get()
    }
}
