//! The writes of `Collection<T>`, each declared idempotent only when repeating it is harmless.

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use keel_core::{Error, ErrorClass, OperationKind};
use mongodb::{
    bson::{self, Bson, Document, doc, oid::ObjectId},
    results::{DeleteResult, UpdateResult},
};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    Collection, Method,
    idempotence::{filter_is_exact_id, update_is_idempotent},
};

impl<T> Collection<T>
where
    T: Serialize + DeserializeOwned + Unpin + Send + Sync + 'static,
{
    /// Inserts one document and returns its `_id`.
    ///
    /// Keel chooses the `_id` (an `ObjectId`) before sending when the document has none, which
    /// makes the insert idempotent: if a retry meets a duplicate key and the document with that
    /// `_id` exists, an earlier attempt applied it and the insert succeeds once, not twice.
    pub async fn insert_one(&self, document: T) -> Result<Bson, Error> {
        let (document, id) = with_id(&document)?;
        self.insert_documents(Method::InsertOne, vec![document])
            .await?;
        Ok(id)
    }

    /// Inserts documents (ordered) and returns their `_id`s, with the same idempotence as
    /// [`insert_one`](Self::insert_one).
    pub async fn insert_many(
        &self,
        documents: impl IntoIterator<Item = T>,
    ) -> Result<Vec<Bson>, Error> {
        let mut prepared = Vec::new();
        let mut ids = Vec::new();
        for document in documents {
            let (document, id) = with_id(&document)?;
            prepared.push(document);
            ids.push(id);
        }
        if prepared.is_empty() {
            return Ok(ids);
        }
        self.insert_documents(Method::InsertMany, prepared).await?;
        Ok(ids)
    }

    async fn insert_documents(
        &self,
        method: Method,
        documents: Vec<Document>,
    ) -> Result<(), Error> {
        let this = self.clone();
        let attempts = Arc::new(AtomicU32::new(0));
        let op = self.operation(
            method,
            OperationKind::Write { idempotent: true },
            move |client| {
                let collection = this.on::<Document>(&client);
                let documents = documents.clone();
                let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
                async move {
                    // Inserting only the documents not already there makes a repeat after a partial
                    // success (ordered insert cut short by a failure) finish the job, once.
                    let pending = if attempt == 1 {
                        documents
                    } else {
                        missing(&collection, documents).await?
                    };
                    if pending.is_empty() {
                        return Ok(());
                    }
                    collection.insert_many(pending).await.map(|_| ())
                }
            },
        );
        self.keel.run_typed(op).await
    }

    /// Updates the first document matching `filter`. Idempotent (retried after ambiguous
    /// failures) only when `update` uses `$set`, `$unset`, `$setOnInsert`, `$min` or `$max`.
    pub async fn update_one(
        &self,
        filter: Document,
        update: Document,
    ) -> Result<UpdateResult, Error> {
        self.update(Method::UpdateOne, filter, update, false).await
    }

    /// Updates every document matching `filter`, with the same idempotence rule as
    /// [`update_one`](Self::update_one).
    pub async fn update_many(
        &self,
        filter: Document,
        update: Document,
    ) -> Result<UpdateResult, Error> {
        self.update(Method::UpdateMany, filter, update, true).await
    }

    async fn update(
        &self,
        method: Method,
        filter: Document,
        update: Document,
        many: bool,
    ) -> Result<UpdateResult, Error> {
        let idempotent = update_is_idempotent(&update);
        let this = self.clone();
        let op = self.operation(method, OperationKind::Write { idempotent }, move |client| {
            let collection = this.on::<Document>(&client);
            let (filter, update) = (filter.clone(), update.clone());
            async move {
                if many {
                    collection.update_many(filter, update).await
                } else {
                    collection.update_one(filter, update).await
                }
            }
        });
        self.keel.run_typed(op).await
    }

    /// Replaces the first document matching `filter` (idempotent: the end state is the
    /// replacement).
    pub async fn replace_one(
        &self,
        filter: Document,
        replacement: T,
    ) -> Result<UpdateResult, Error> {
        let replacement = to_document(&replacement)?;
        let this = self.clone();
        let op = self.operation(
            Method::ReplaceOne,
            OperationKind::Write { idempotent: true },
            move |client| {
                let collection = this.on::<Document>(&client);
                let (filter, replacement) = (filter.clone(), replacement.clone());
                async move { collection.replace_one(filter, replacement).await }
            },
        );
        self.keel.run_typed(op).await
    }

    /// Deletes the first document matching `filter`; idempotent only when `filter` is an exact
    /// `_id` (a repeat of any other filter could delete a second document).
    pub async fn delete_one(&self, filter: Document) -> Result<DeleteResult, Error> {
        let idempotent = filter_is_exact_id(&filter);
        let this = self.clone();
        let op = self.operation(
            Method::DeleteOne,
            OperationKind::Write { idempotent },
            move |client| {
                let collection = this.on::<Document>(&client);
                let filter = filter.clone();
                async move { collection.delete_one(filter).await }
            },
        );
        self.keel.run_typed(op).await
    }

    /// Deletes every document matching `filter` (idempotent).
    pub async fn delete_many(&self, filter: Document) -> Result<DeleteResult, Error> {
        let this = self.clone();
        let op = self.operation(
            Method::DeleteMany,
            OperationKind::Write { idempotent: true },
            move |client| {
                let collection = this.on::<Document>(&client);
                let filter = filter.clone();
                async move { collection.delete_many(filter).await }
            },
        );
        self.keel.run_typed(op).await
    }

    /// Updates the first document matching `filter` and returns it as it was before the update
    /// (never repeated after an ambiguous failure: a repeat would return a different document).
    pub async fn find_one_and_update(
        &self,
        filter: Document,
        update: Document,
    ) -> Result<Option<T>, Error> {
        let this = self.clone();
        let op = self.operation(
            Method::FindOneAndUpdate,
            OperationKind::Write { idempotent: false },
            move |client| {
                let collection = this.on::<T>(&client);
                let (filter, update) = (filter.clone(), update.clone());
                async move { collection.find_one_and_update(filter, update).await }
            },
        );
        self.keel.run_typed(op).await
    }
}

fn to_document<T: Serialize>(value: &T) -> Result<Document, Error> {
    bson::to_document(value).map_err(|e| {
        let facts = keel_core::ErrorFacts::new(keel_core::DriverFailure::Serialization);
        let err = Error::from_facts(&facts, format!("the document cannot be stored: {e}"));
        debug_assert_eq!(err.class(), ErrorClass::InvalidInput);
        err
    })
}

/// The document as BSON with an `_id`, chosen here when missing, and that `_id`.
fn with_id<T: Serialize>(value: &T) -> Result<(Document, Bson), Error> {
    let mut document = to_document(value)?;
    let id = document
        .entry("_id".to_owned())
        .or_insert_with(|| Bson::ObjectId(ObjectId::new()))
        .clone();
    Ok((document, id))
}

/// The documents whose `_id` is not in the collection yet.
async fn missing(
    collection: &mongodb::Collection<Document>,
    documents: Vec<Document>,
) -> mongodb::error::Result<Vec<Document>> {
    let ids: Vec<Bson> = documents
        .iter()
        .filter_map(|d| d.get("_id").cloned())
        .collect();
    let filter = doc! { "_id": { "$in": ids } };
    let mut present = Vec::new();
    let mut cursor = collection
        .find(filter)
        .projection(doc! { "_id": 1 })
        .await?;
    while cursor.advance().await? {
        if let Ok(id) = cursor.current().get("_id")
            && let Some(id) = id.and_then(|raw| Bson::try_from(raw.to_raw_bson()).ok())
        {
            present.push(id);
        }
    }
    Ok(documents
        .into_iter()
        .filter(|d| d.get("_id").is_none_or(|id| !present.contains(id)))
        .collect())
}
