//! Reading server documents for download: a whole subscription (polling, resync) or the
//! documents a batch of change events named, both through `Keel::run`.

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongokeel::Keel;

use super::split_ns;

/// Every server document of `ns` matching `filter` (tombstones included: they keep their last
/// fields).
pub(crate) async fn subscription(
    keel: &Keel,
    ns: &str,
    filter: Document,
) -> Result<Vec<Document>, keel_core::Error> {
    find(keel, ns, filter).await
}

/// The server documents among `ids` that (still) match `filter`; an id missing from the
/// answer was deleted or left the subscription.
pub(crate) async fn by_ids(
    keel: &Keel,
    ns: &str,
    filter: &Document,
    ids: Vec<Bson>,
) -> Result<Vec<Document>, keel_core::Error> {
    let mut query = doc! { "_id": { "$in": ids } };
    if !filter.is_empty() {
        query = doc! { "$and": [query, filter.clone()] };
    }
    find(keel, ns, query).await
}

async fn find(keel: &Keel, ns: &str, filter: Document) -> Result<Vec<Document>, keel_core::Error> {
    let (db, coll) = split_ns(ns);
    keel.run(keel_core::Operation::read(
        "keel_sync.download",
        move |client: mongodb::Client| {
            let collection = client.database(&db).collection::<Document>(&coll);
            let filter = filter.clone();
            async move { collection.find(filter).await?.try_collect().await }
        },
    ))
    .await
}

/// The server's `operationTime` now, from a `ping`: where a change stream started after a full
/// read must begin so that nothing changed in between is missed. `None` when the server gives
/// none: a standalone mongod (and keel-testkit's standalone) reports no cluster time, and has no
/// change streams either.
pub(crate) async fn operation_time(
    keel: &Keel,
    ns: &str,
) -> Result<Option<mongodb::bson::Timestamp>, keel_core::Error> {
    let (db, _) = split_ns(ns);
    let reply = keel
        .run(keel_core::Operation::command(
            "keel_sync.operation_time",
            true,
            move |client: mongodb::Client| {
                let database = client.database(&db);
                async move { database.run_command(doc! { "ping": 1 }).await }
            },
        ))
        .await?;
    Ok(reply.get_timestamp("operationTime").ok())
}
