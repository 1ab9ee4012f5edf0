//! `SyncedCollection<T>`: typed reads of the local view, optimistic writes, and a stream of
//! local changes for a UI.

use std::marker::PhantomData;

use futures_util::Stream;
use mongodb::bson::{Bson, Document};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    Changes, ConflictPolicy, DeleteRule, OperationKind, Result, SyncClient, SyncError,
    client::CollectionSettings, operation::DocKey, server_record::SYNC_FIELD,
};

/// Chooses a synced collection's conflict settings before [`subscribe`](Self::subscribe).
#[derive(Debug)]
#[must_use = "call `subscribe` to get the collection"]
pub struct CollectionBuilder<T> {
    client: SyncClient,
    ns: String,
    settings: CollectionSettings,
    _doc: PhantomData<fn() -> T>,
}

impl<T> CollectionBuilder<T> {
    pub(crate) fn new(client: SyncClient, db: &str, coll: &str) -> Self {
        Self {
            client,
            ns: format!("{db}.{coll}"),
            settings: CollectionSettings::default(),
            _doc: PhantomData,
        }
    }

    /// The conflict policy (default [`ConflictPolicy::LastWriterWins`]).
    pub fn policy(mut self, policy: ConflictPolicy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// The delete-versus-update rule (default [`DeleteRule::DeleteWins`]).
    pub fn delete_rule(mut self, rule: DeleteRule) -> Self {
        self.settings.delete_rule = rule;
        self
    }

    /// Syncs the server documents matching `filter` (a MongoDB query; `{}` for all) into the
    /// local replica, and gives the collection.
    pub fn subscribe(self, filter: Document) -> SyncedCollection<T> {
        let inner = &self.client.inner;
        inner
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(self.ns.clone(), self.settings);
        inner
            .subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(self.ns.clone(), filter);
        inner.wake.notify_one();
        SyncedCollection {
            client: self.client,
            ns: self.ns,
            _doc: PhantomData,
        }
    }
}

/// One write of [`SyncedCollection::write_many`].
#[derive(Clone, Debug)]
pub enum Write<T> {
    /// Insert a document (it must have an `_id`).
    Insert(T),
    /// Field-level changes to the document with this `_id`.
    Update(Bson, Changes),
    /// Replace the whole document (same `_id`).
    Replace(T),
    /// Delete the document with this `_id`.
    Delete(Bson),
}

/// A local change to one document, as seen by [`SyncedCollection::watch`].
#[derive(Clone, Debug, PartialEq)]
pub struct LocalChange<T> {
    /// The document's `_id`.
    pub id: Bson,
    /// The document now, or `None` when it is gone from the local view.
    pub doc: Option<T>,
}

/// A collection whose reads come from the local view and whose writes apply to it at once and
/// are uploaded when the database is reachable.
#[derive(Debug)]
pub struct SyncedCollection<T> {
    client: SyncClient,
    ns: String,
    _doc: PhantomData<fn() -> T>,
}

impl<T> Clone for SyncedCollection<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            ns: self.ns.clone(),
            _doc: PhantomData,
        }
    }
}

fn decode<T: DeserializeOwned>(doc: &Document) -> Result<T> {
    mongodb::bson::from_document(doc.clone()).map_err(SyncError::bson)
}

fn encode<T: Serialize>(doc: &T) -> Result<(Bson, Document)> {
    let mut doc = mongodb::bson::to_document(doc).map_err(SyncError::bson)?;
    doc.remove(SYNC_FIELD);
    let id = doc.get("_id").cloned().ok_or(SyncError::MissingId)?;
    Ok((id, doc))
}

impl<T: Serialize + DeserializeOwned> SyncedCollection<T> {
    /// The document with this `_id` in the local view.
    pub fn get(&self, id: impl Into<Bson>) -> Result<Option<T>> {
        let key = DocKey::new(&self.ns, &id.into())?;
        let state = self.client.inner.lock();
        state.view.get(&key).map(decode).transpose()
    }

    /// Every document of the local view for which `predicate` holds.
    pub fn find(&self, predicate: impl Fn(&T) -> bool) -> Result<Vec<T>> {
        let docs: Vec<Document> = {
            let state = self.client.inner.lock();
            state
                .view
                .iter()
                .filter(|(key, _)| key.ns == self.ns)
                .map(|(_, doc)| doc.clone())
                .collect()
        };
        let mut found = Vec::new();
        for doc in &docs {
            let value: T = decode(doc)?;
            if predicate(&value) {
                found.push(value);
            }
        }
        Ok(found)
    }

    /// Inserts a document (it must have an `_id`); returns the operation id once durable.
    pub async fn insert(&self, doc: T) -> Result<uuid::Uuid> {
        let (id, doc) = encode(&doc)?;
        self.client
            .inner
            .enqueue(&self.ns, id, OperationKind::Insert(doc))
            .await
    }

    /// Field-level changes to the document with this `_id`.
    pub async fn update(&self, id: impl Into<Bson>, changes: Changes) -> Result<uuid::Uuid> {
        changes.validate()?;
        let id = id.into();
        self.check_inc(&id, &changes)?;
        self.client
            .inner
            .enqueue(&self.ns, id, OperationKind::Update(changes))
            .await
    }

    /// Replaces the whole document (same `_id`).
    pub async fn replace(&self, doc: T) -> Result<uuid::Uuid> {
        let (id, doc) = encode(&doc)?;
        self.client
            .inner
            .enqueue(&self.ns, id, OperationKind::Replace(doc))
            .await
    }

    /// Deletes the document with this `_id`.
    pub async fn delete(&self, id: impl Into<Bson>) -> Result<uuid::Uuid> {
        self.client
            .inner
            .enqueue(&self.ns, id.into(), OperationKind::Delete)
            .await
    }

    /// Several writes in one local commit (one fsync for all, where separate calls share
    /// fsyncs only with writes that happen to wait at the same time): all are durable when it
    /// returns, or none is (an error, and none shows in the view). Each write is checked against
    /// the view with the ones before it applied; a refused one refuses the whole batch. They
    /// are uploaded in order, like separate writes. Returns the operation ids in order.
    ///
    /// ```no_run
    /// # async fn run(notes: keel_sync::SyncedCollection<mongodb::bson::Document>) -> keel_sync::Result<()> {
    /// use keel_sync::{Changes, Write};
    /// use mongodb::bson::doc;
    /// notes
    ///     .write_many(vec![
    ///         Write::Insert(doc! { "_id": 7, "text": "new" }),
    ///         Write::Update(1.into(), Changes::new().inc("edits", 1)),
    ///         Write::Delete(2.into()),
    ///     ])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_many(&self, writes: Vec<Write<T>>) -> Result<Vec<uuid::Uuid>> {
        let mut queued = Vec::with_capacity(writes.len());
        for write in writes {
            queued.push(match write {
                Write::Insert(doc) => {
                    let (id, doc) = encode(&doc)?;
                    (id, OperationKind::Insert(doc))
                }
                Write::Update(id, changes) => {
                    changes.validate()?;
                    if self
                        .client
                        .inner
                        .lock()
                        .view
                        .contains_key(&DocKey::new(&self.ns, &id)?)
                    {
                        self.check_inc(&id, &changes)?;
                    }
                    (id, OperationKind::Update(changes))
                }
                Write::Replace(doc) => {
                    let (id, doc) = encode(&doc)?;
                    (id, OperationKind::Replace(doc))
                }
                Write::Delete(id) => (id, OperationKind::Delete),
            });
        }
        self.client.inner.enqueue_many(&self.ns, queued).await
    }

    /// A stream of every later change to this collection's local view (local writes, uploads
    /// and downloaded server changes). A watcher that falls more than 1024 changes behind
    /// skips the oldest ones; read the view again with `find` then.
    pub fn watch(&self) -> impl Stream<Item = LocalChange<T>> + Send + 'static
    where
        T: Send + 'static,
    {
        let receiver = self.client.inner.changes.subscribe();
        let ns = self.ns.clone();
        futures_util::stream::unfold((receiver, ns), |(mut receiver, ns)| async move {
            loop {
                match receiver.recv().await {
                    Ok(change) if change.ns == ns => {
                        let doc = change.doc.as_ref().and_then(|d| decode(d).ok());
                        return Some((LocalChange { id: change.id, doc }, (receiver, ns)));
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            }
        })
    }

    fn check_inc(&self, id: &Bson, changes: &Changes) -> Result<()> {
        let key = DocKey::new(&self.ns, id)?;
        let state = self.client.inner.lock();
        let Some(doc) = state.view.get(&key) else {
            return Err(SyncError::NotFound);
        };
        for path in changes.inc.keys() {
            if let Some(value) = crate::operation::get_path(doc, path)
                && !matches!(value, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))
            {
                return Err(SyncError::InvalidChange(format!(
                    "`$inc` of `{path}` needs a number there, but it holds {value}"
                )));
            }
        }
        Ok(())
    }
}
