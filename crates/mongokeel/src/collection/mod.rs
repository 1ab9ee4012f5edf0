//! `Collection<T>`: typed CRUD whose methods build the right `Operation` kind, so retry safety is
//! automatic.

mod idempotence;
mod method;
mod read;
mod write;

use std::{marker::PhantomData, sync::Arc};

use keel_core::OperationName;

use self::method::{Method, MethodNames};
use crate::Keel;

/// A typed collection. Cheap to clone.
///
/// It names a collection rather than holding the driver's handle, so a `reset()` of the managed
/// client is picked up by the next call.
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
    database: Arc<str>,
    collection: Arc<str>,
    names: Arc<MethodNames>,
    _documents: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Self {
            keel: self.keel.clone(),
            database: Arc::clone(&self.database),
            collection: Arc::clone(&self.collection),
            names: Arc::clone(&self.names),
            _documents: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Collection({}.{})", self.database, self.collection)
    }
}

impl<T> Collection<T> {
    pub(crate) fn new(keel: Keel, database: &str, collection: &str) -> Self {
        Self {
            keel,
            database: database.into(),
            collection: collection.into(),
            names: Arc::new(MethodNames::new(database, collection)),
            _documents: PhantomData,
        }
    }

    /// The database name.
    pub fn database_name(&self) -> &str {
        &self.database
    }

    /// The collection name.
    pub fn name(&self) -> &str {
        &self.collection
    }

    /// The operation name for `method` (`"app.users.find_one"`): a metric label, so it comes
    /// from the code's fixed set of collections and methods, never from data.
    fn operation_name(&self, method: Method) -> OperationName {
        self.names.get(method)
    }

    /// The driver's collection on `client`, with this collection's names.
    fn on<D: Send + Sync>(&self, client: &mongodb::Client) -> mongodb::Collection<D> {
        client.database(&self.database).collection(&self.collection)
    }
}
