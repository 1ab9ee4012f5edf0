//! The driver's handle on the collection, built once per driver client instead of per attempt.
//!
//! `client.database(db).collection(name)` copies both names and the client's options into two
//! fresh allocations; in front of a fast server that was a tenth of Keel's cost per call.

use std::sync::{PoisonError, RwLock};

use keel_pool_core::ManagedClient;
use mongodb::bson::Document;

/// The cached handle, keyed by the managed client's generation so that a `reset()` (a new
/// driver client) is picked up by the next attempt.
#[derive(Debug)]
pub(super) struct DriverCollection {
    client: ManagedClient,
    database: String,
    collection: String,
    cached: RwLock<Option<(u64, mongodb::Collection<Document>)>>,
}

impl DriverCollection {
    pub(super) fn new(client: ManagedClient, database: &str, collection: &str) -> Self {
        Self {
            client,
            database: database.to_owned(),
            collection: collection.to_owned(),
            cached: RwLock::new(None),
        }
    }

    pub(super) fn database(&self) -> &str {
        &self.database
    }

    pub(super) fn collection(&self) -> &str {
        &self.collection
    }

    /// The handle on the current driver client, typed for `D`.
    pub(super) fn get<D: Send + Sync>(&self) -> mongodb::Collection<D> {
        let generation = self.client.generation();
        if let Some((built_for, handle)) =
            &*self.cached.read().unwrap_or_else(PoisonError::into_inner)
            && *built_for == generation
        {
            return handle.clone_with_type();
        }
        // Client and generation are read together, so a handle is never filed under a
        // generation its client does not belong to.
        let (client, generation) = self.client.current_with_generation();
        let handle = client
            .database(&self.database)
            .collection::<Document>(&self.collection);
        *self.cached.write().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, handle.clone()));
        handle.clone_with_type()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use keel_config::KeelConfig;
    use keel_testkit::TestServer;

    use super::*;

    fn cached_generation(driver: &DriverCollection) -> Option<u64> {
        driver
            .cached
            .read()
            .unwrap()
            .as_ref()
            .map(|(generation, _)| *generation)
    }

    #[tokio::test]
    async fn the_handle_is_built_once_per_driver_client() {
        let server = TestServer::start().await.unwrap();
        let config = KeelConfig::for_uri(server.uri()).unwrap();
        let client = crate::layers::connect(&config).await.unwrap();
        let driver = DriverCollection::new(client.clone(), "shop", "items");
        assert_eq!(cached_generation(&driver), None, "built on first use");

        let items = driver.get::<Document>();
        assert_eq!(items.name(), "items");
        assert_eq!(items.namespace().db, "shop");
        assert_eq!(cached_generation(&driver), Some(0));

        client.reset().unwrap();
        assert_eq!(cached_generation(&driver), Some(0), "kept until next used");
        let items = driver.get::<Document>();
        assert_eq!(
            cached_generation(&driver),
            Some(1),
            "rebuilt on the new client"
        );
        items
            .insert_one(mongodb::bson::doc! { "_id": 1 })
            .await
            .unwrap();
        let found = driver
            .get::<Document>()
            .count_documents(mongodb::bson::doc! {})
            .await;
        assert_eq!(found.unwrap(), 1);
        client.shutdown().await;
    }
}
