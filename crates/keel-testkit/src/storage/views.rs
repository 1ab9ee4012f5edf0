//! Views, stored as mongod stores them: one document per view in the database's `system.views`
//! collection, `{_id: "<db>.<view>", viewOn: "<source>", pipeline: [...]}` (mongod's
//! `ViewDefinition`, jstests `views/views_creation.js`; `system.views` is listed as an
//! ordinary collection, jstests `list_collections_no_views.js`). Being documents, views are
//! journaled and dropped with their database like any other data; change streams never report
//! `system.*` namespaces, so only the `create` event below is seen.

use bson::{Bson, Document, doc};

use super::{DdlOp, OpKind, Storage, ddl_entry};

/// The collection holding a database's view definitions.
pub(crate) const SYSTEM_VIEWS: &str = "system.views";

/// One view: its source (a collection or another view) and its pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct View {
    pub(crate) view_on: String,
    pub(crate) pipeline: Vec<Document>,
}

impl View {
    fn from_document(d: &Document) -> Option<Self> {
        Some(Self {
            view_on: d.get_str("viewOn").ok()?.to_owned(),
            pipeline: d
                .get_array("pipeline")
                .map(|a| a.iter().filter_map(|s| s.as_document().cloned()).collect())
                .unwrap_or_default(),
        })
    }

    /// `listCollections`' `options`.
    pub(crate) fn options(&self) -> Document {
        doc! {"viewOn": &self.view_on, "pipeline": self.pipeline.clone()}
    }
}

impl Storage {
    /// The view `db.name`, if there is one.
    pub(crate) fn view(&self, db: &str, name: &str) -> Option<View> {
        let views = self.collection(db, SYSTEM_VIEWS)?;
        let rid = views.find_id(&Bson::String(format!("{db}.{name}")))?;
        View::from_document(views.get(rid)?)
    }

    /// Every view of `db` by name.
    pub(crate) fn views(&self, db: &str) -> Vec<(String, View)> {
        let Some(views) = self.collection(db, SYSTEM_VIEWS) else {
            return Vec::new();
        };
        let prefix = format!("{db}.");
        views
            .documents()
            .filter_map(|d| {
                let name = d.get_str("_id").ok()?.strip_prefix(&prefix)?.to_owned();
                Some((name, View::from_document(d)?))
            })
            .collect()
    }

    /// Creates a view; false when a collection or view of that name exists. mongod's oplog
    /// has the `system.views` insert and a `create` command whose options are `viewOn` and
    /// `pipeline`, which an expanded change stream reports as a `create` event.
    pub(crate) fn create_view(&mut self, db: &str, name: &str, view: View) -> bool {
        if self.collection(db, name).is_some() || self.view(db, name).is_some() {
            return false;
        }
        let definition = doc! {
            "_id": format!("{db}.{name}"),
            "viewOn": &view.view_on,
            "pipeline": view.pipeline.clone(),
        };
        if self.insert(db, SYSTEM_VIEWS, definition).is_err() {
            return false;
        }
        let options = view.options();
        self.record(db, name, |_| {
            ddl_entry(db, Some(name), OpKind::Ddl(DdlOp::Create(options)))
        });
        true
    }

    /// Drops a view; false when there is none of that name.
    pub(crate) fn drop_view(&mut self, db: &str, name: &str) -> bool {
        let id = Bson::String(format!("{db}.{name}"));
        let Some(rid) = self
            .collection(db, SYSTEM_VIEWS)
            .and_then(|c| c.find_id(&id))
        else {
            return false;
        };
        self.delete(db, SYSTEM_VIEWS, rid).is_some()
    }
}
