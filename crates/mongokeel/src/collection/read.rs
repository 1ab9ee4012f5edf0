//! The reads of `Collection<T>`: always safe to repeat.

use futures_util::{Stream, StreamExt, TryStreamExt};
use keel_core::{Error, OperationKind};
use mongodb::{bson::Document, options::FindOptions};
use serde::{Serialize, de::DeserializeOwned};

use super::{Collection, Method, idempotence::pipeline_writes};

impl<T> Collection<T>
where
    T: Serialize + DeserializeOwned + Unpin + Send + Sync + 'static,
{
    /// The first document matching `filter`, if any.
    pub async fn find_one(&self, filter: Document) -> Result<Option<T>, Error> {
        let this = self.clone();
        let op = self.operation(Method::FindOne, OperationKind::Read, move |client| {
            let collection = this.on::<T>(&client);
            let filter = filter.clone();
            async move { collection.find_one(filter).await }
        });
        self.keel.run_typed(op).await
    }

    /// Every document matching `filter`, collected into a `Vec` (the whole read is retried as
    /// one operation).
    pub async fn find(&self, filter: Document) -> Result<Vec<T>, Error> {
        self.find_with_options(filter, FindOptions::default()).await
    }

    /// Like [`find`](Self::find), with the driver's options (sort, skip, limit, projection…).
    pub async fn find_with_options(
        &self,
        filter: Document,
        options: FindOptions,
    ) -> Result<Vec<T>, Error> {
        let this = self.clone();
        let op = self.operation(Method::Find, OperationKind::Read, move |client| {
            let collection = this.on::<T>(&client);
            let (filter, options) = (filter.clone(), options.clone());
            async move {
                let cursor = collection.find(filter).with_options(options).await?;
                cursor.try_collect().await
            }
        });
        self.keel.run_typed(op).await
    }

    /// Documents matching `filter` as a stream. Only opening the cursor goes through Keel's
    /// layers; a failure while streaming later batches ends the stream with that error.
    pub async fn find_stream(
        &self,
        filter: Document,
    ) -> Result<impl Stream<Item = Result<T, Error>> + Send + use<T>, Error> {
        let this = self.clone();
        let op = self.operation(Method::FindStream, OperationKind::Read, move |client| {
            let collection = this.on::<T>(&client);
            let filter = filter.clone();
            async move { collection.find(filter).await }
        });
        let cursor = self.keel.run_typed(op).await?;
        Ok(cursor.map(|item| item.map_err(Error::from)))
    }

    /// How many documents match `filter`.
    pub async fn count_documents(&self, filter: Document) -> Result<u64, Error> {
        let this = self.clone();
        let op = self.operation(Method::CountDocuments, OperationKind::Read, move |client| {
            let collection = this.on::<T>(&client);
            let filter = filter.clone();
            async move { collection.count_documents(filter).await }
        });
        self.keel.run_typed(op).await
    }

    /// Runs an aggregation pipeline and collects the results. A pipeline ending in `$out` or
    /// `$merge` is a non-idempotent write (retried only when nothing was applied).
    pub async fn aggregate(&self, pipeline: Vec<Document>) -> Result<Vec<Document>, Error> {
        let kind = if pipeline_writes(&pipeline) {
            OperationKind::Write { idempotent: false }
        } else {
            OperationKind::Read
        };
        let this = self.clone();
        let op = self.operation(Method::Aggregate, kind, move |client| {
            let collection = this.on::<Document>(&client);
            let pipeline = pipeline.clone();
            async move { collection.aggregate(pipeline).await?.try_collect().await }
        });
        self.keel.run_typed(op).await
    }
}
