//! Collection and index changes (DDL) captured during a dump, replayed on restore.
//!
//! A dump reads each collection at its own moment between T0 and T1; the captured changes run
//! from T0. Data changes are idempotent and simply replayed, but DDL is not: replaying "rename
//! a → b" over a `b` that was dumped *after* the rename would put old data over newer. So the
//! replay follows collections by UUID (`collectionUUID`, expanded events, MongoDB 6.0+), as the
//! server does. The [`Catalog`] knows which collection (UUID) each restored namespace holds:
//! at first the dumped ones (their metadata's `uuid`); an event applies only to the namespace
//! holding its collection, and a `create` only where no collection is held. The backup leaves
//! out the dump of a collection that was renamed or dropped before the end and dumps every
//! collection present at the end (`backup.rs`), so each collection is dumped at most once, under
//! the name it had when it was read, and the replay takes it from there to T1:
//! - `create`: creates the collection with its options where nothing is held (a collection
//!   created before its dump is already there);
//! - `rename a → b`: renames (dropping a target held by another collection) unless `b`
//!   already holds this collection (dumped after the rename: newer), in which case `a`'s older
//!   copy is dropped;
//! - `drop`: drops; `dropDatabase`: nothing more (mongod reports a `drop` per collection first);
//! - `createIndexes`, `dropIndexes`, `modify` of an index: change the namespace's index plan,
//!   which starts as the dumped indexes and is built after the replay (as mongorestore builds
//!   indexes after the data); each sets or removes an index by name, so the last event wins,
//!   whatever the moment the collection was dumped;
//! - `modify` of options: `collMod` with the same fields.

use std::collections::HashMap;

use mongodb::bson::{Bson, Document, doc};

/// A restored namespace, as the backup names it: `(db, collection)`.
pub(crate) type Namespace = (String, String);

/// One collection or index change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DdlChange {
    /// `create` with these options (`idIndex` left out: the target makes its own).
    Create { options: Document },
    /// `createIndexes`: these specs.
    CreateIndexes(Vec<Document>),
    /// `dropIndexes`: these index names.
    DropIndexes(Vec<String>),
    /// `modify` (`collMod`): collection options, and an index's changed options.
    Modify {
        options: Document,
        index: Option<Document>,
    },
    /// `rename` to `to`.
    Rename { to: Namespace },
}

impl DdlChange {
    /// The change an event of `kind` describes; `None` for a kind a restore does not replay
    /// (`shardCollection`, …).
    pub(crate) fn parse(kind: &str, event: &Document) -> Result<Option<Self>, String> {
        let description = || {
            event
                .get_document("operationDescription")
                .map_err(|_| format!("a `{kind}` event has no operationDescription"))
        };
        let specs = || -> Result<Vec<Document>, String> {
            Ok(description()?
                .get_array("indexes")
                .map_err(|_| format!("a `{kind}` event has no operationDescription.indexes"))?
                .iter()
                .filter_map(Bson::as_document)
                .map(|spec| {
                    let mut spec = spec.clone();
                    spec.remove("ns");
                    spec
                })
                .collect())
        };
        Ok(Some(match kind {
            "create" => {
                let mut options = description()?.clone();
                options.remove("idIndex");
                Self::Create { options }
            }
            "createIndexes" => Self::CreateIndexes(specs()?),
            "dropIndexes" => Self::DropIndexes(
                specs()?
                    .iter()
                    .filter_map(|s| s.get_str("name").ok().map(str::to_owned))
                    .collect(),
            ),
            "modify" => {
                let mut options = description()?.clone();
                let index = match options.remove("index") {
                    Some(Bson::Document(index)) => Some(index),
                    _ => None,
                };
                Self::Modify { options, index }
            }
            "rename" => {
                let to = event
                    .get_document("to")
                    .map_err(|_| "a `rename` event has no `to`".to_owned())?;
                let name = |field| {
                    to.get_str(field)
                        .map(str::to_owned)
                        .map_err(|_| format!("a `rename` event's `to` has no `{field}`"))
                };
                Self::Rename {
                    to: (name("db")?, name("coll")?),
                }
            }
            _ => return Ok(None),
        }))
    }
}

/// What a change does in the target, once the catalog has judged it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Nothing: the change is already in the dumped data, or concerns another collection.
    None,
    /// Create the collection with these options (dropping what the target has there first in
    /// drop mode).
    Create(Document),
    /// `collMod` with these options.
    CollMod(Document),
    /// Rename to the namespace, dropping a target.
    Rename(Namespace),
    /// Drop the namespace.
    Drop,
}

/// Which collection each restored namespace holds, and its indexes to build.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// Namespace → the UUID (hex) of the collection it holds (`None`: unknown UUID).
    held: HashMap<Namespace, Option<String>>,
    /// Namespace → the non-`_id_` index specs to build after the replay.
    indexes: HashMap<Namespace, Vec<Document>>,
}

impl Catalog {
    /// A namespace restored from the dump, holding collection `uuid` with `indexes`.
    pub(crate) fn restored(&mut self, ns: Namespace, uuid: Option<String>, indexes: Vec<Document>) {
        let indexes = indexes
            .into_iter()
            .filter(|i| i.get_str("name").is_ok_and(|n| n != "_id_"))
            .map(|mut i| {
                i.remove("ns");
                i
            })
            .collect();
        self.indexes.insert(ns.clone(), indexes);
        self.held.insert(ns, uuid);
    }

    /// Whether an event of collection `uuid` applies to `ns`.
    pub(crate) fn holds(&self, ns: &Namespace, uuid: &str) -> bool {
        self.held
            .get(ns)
            .is_some_and(|held| held.as_deref() == Some(uuid))
    }

    /// Judges a DDL change of collection `uuid` on `ns` and updates the catalog.
    pub(crate) fn apply(&mut self, ns: &Namespace, uuid: &str, change: DdlChange) -> Action {
        if let DdlChange::Create { options } = change {
            if self.held.contains_key(ns) {
                return Action::None;
            }
            self.held.insert(ns.clone(), Some(uuid.to_owned()));
            self.indexes.insert(ns.clone(), Vec::new());
            return Action::Create(options);
        }
        if !self.holds(ns, uuid) {
            return Action::None;
        }
        match change {
            DdlChange::Create { .. } => Action::None,
            DdlChange::CreateIndexes(specs) => {
                let plan = self.indexes.entry(ns.clone()).or_default();
                for spec in specs {
                    let name = spec.get_str("name").unwrap_or_default().to_owned();
                    if name == "_id_" {
                        continue;
                    }
                    plan.retain(|i| i.get_str("name").unwrap_or_default() != name);
                    plan.push(spec);
                }
                Action::None
            }
            DdlChange::DropIndexes(names) => {
                if let Some(plan) = self.indexes.get_mut(ns) {
                    plan.retain(|i| !names.iter().any(|n| i.get_str("name") == Ok(n.as_str())));
                }
                Action::None
            }
            DdlChange::Modify { options, index } => {
                if let (Some(index), Some(plan)) = (index, self.indexes.get_mut(ns)) {
                    let name = index.get_str("name").ok().map(str::to_owned);
                    let key = index.get_document("keyPattern").ok().cloned();
                    for spec in plan.iter_mut().filter(|s| {
                        name.as_deref().is_some_and(|n| s.get_str("name") == Ok(n))
                            || key.as_ref().is_some_and(|k| s.get_document("key") == Ok(k))
                    }) {
                        for (field, value) in index.iter() {
                            if field != "name" && field != "keyPattern" {
                                spec.insert(field, value.clone());
                            }
                        }
                    }
                }
                if options.is_empty() {
                    Action::None
                } else {
                    Action::CollMod(options)
                }
            }
            DdlChange::Rename { to } => {
                let plan = self.indexes.remove(ns).unwrap_or_default();
                let held = self.held.remove(ns).flatten();
                if self.holds(&to, uuid) {
                    // The target was dumped after the rename: its copy is the newer one.
                    return Action::Drop;
                }
                self.indexes.insert(to.clone(), plan);
                self.held.insert(to.clone(), held);
                Action::Rename(to)
            }
        }
    }

    /// A `drop` of collection `uuid` on `ns`: whether to drop it in the target.
    pub(crate) fn drop(&mut self, ns: &Namespace, uuid: &str) -> bool {
        if !self.holds(ns, uuid) {
            return false;
        }
        self.held.remove(ns);
        self.indexes.remove(ns);
        true
    }

    /// The indexes to build once the replay is done, per namespace that exists then.
    pub(crate) fn into_indexes(self) -> Vec<(Namespace, Vec<Document>)> {
        let mut out: Vec<_> = self.indexes.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The `create` command for a collection with `options`.
pub(crate) fn create_command(coll: &str, options: &Document) -> Document {
    let mut create = doc! {"create": coll};
    create.extend(options.clone());
    create
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(c: &str) -> Namespace {
        ("app".into(), c.into())
    }

    fn index(name: &str) -> Document {
        doc! {"v": 2, "key": {name: 1}, "name": name}
    }

    #[test]
    fn a_rename_after_the_dump_of_its_source_is_replayed() {
        let mut catalog = Catalog::default();
        catalog.restored(ns("a"), Some("u1".into()), vec![index("x")]);
        let action = catalog.apply(&ns("a"), "u1", DdlChange::Rename { to: ns("b") });
        assert_eq!(action, Action::Rename(ns("b")));
        assert!(catalog.holds(&ns("b"), "u1") && !catalog.holds(&ns("a"), "u1"));
        assert_eq!(catalog.into_indexes(), vec![(ns("b"), vec![index("x")])]);
    }

    #[test]
    fn a_rename_whose_target_was_dumped_later_drops_the_older_source_copy() {
        let mut catalog = Catalog::default();
        catalog.restored(ns("a"), Some("u1".into()), vec![]);
        catalog.restored(ns("b"), Some("u1".into()), vec![index("y")]);
        let action = catalog.apply(&ns("a"), "u1", DdlChange::Rename { to: ns("b") });
        assert_eq!(action, Action::Drop);
        assert_eq!(catalog.into_indexes(), vec![(ns("b"), vec![index("y")])]);
    }

    #[test]
    fn events_of_another_collection_than_the_one_held_are_not_applied() {
        let mut catalog = Catalog::default();
        // `c` was dropped and created again before its dump: the dump holds u2.
        catalog.restored(ns("c"), Some("u2".into()), vec![]);
        assert!(!catalog.holds(&ns("c"), "u1"));
        assert!(!catalog.drop(&ns("c"), "u1"));
        let create = DdlChange::Create { options: doc! {} };
        assert_eq!(catalog.apply(&ns("c"), "u2", create.clone()), Action::None);
        assert!(catalog.drop(&ns("c"), "u2"));
        assert_eq!(
            catalog.apply(&ns("c"), "u3", create),
            Action::Create(doc! {})
        );
        assert!(catalog.holds(&ns("c"), "u3"));
    }

    #[test]
    fn the_last_index_change_by_name_wins_whenever_the_collection_was_dumped() {
        let mut catalog = Catalog::default();
        // Dumped after `x` was created and before it was dropped and `z` created.
        catalog.restored(ns("a"), Some("u1".into()), vec![index("_id_"), index("x")]);
        catalog.apply(&ns("a"), "u1", DdlChange::CreateIndexes(vec![index("x")]));
        catalog.apply(&ns("a"), "u1", DdlChange::DropIndexes(vec!["x".into()]));
        catalog.apply(&ns("a"), "u1", DdlChange::CreateIndexes(vec![index("z")]));
        let hidden = DdlChange::Modify {
            options: doc! {},
            index: Some(doc! {"name": "z", "hidden": true}),
        };
        assert_eq!(catalog.apply(&ns("a"), "u1", hidden), Action::None);
        let mut z = index("z");
        z.insert("hidden", true);
        assert_eq!(catalog.into_indexes(), vec![(ns("a"), vec![z])]);
    }

    #[test]
    fn events_parse_from_their_mongod_shapes() {
        let create = doc! {
            "operationType": "create",
            "operationDescription": {"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}, "capped": true},
        };
        assert_eq!(
            DdlChange::parse("create", &create).unwrap(),
            Some(DdlChange::Create {
                options: doc! {"capped": true}
            })
        );
        let rename = doc! {"to": {"db": "app", "coll": "b"}, "operationDescription": {"to": {"db": "app", "coll": "b"}}};
        assert_eq!(
            DdlChange::parse("rename", &rename).unwrap(),
            Some(DdlChange::Rename { to: ns("b") })
        );
        let drop = doc! {"operationDescription": {"indexes": [index("x")]}};
        assert_eq!(
            DdlChange::parse("dropIndexes", &drop).unwrap(),
            Some(DdlChange::DropIndexes(vec!["x".into()]))
        );
        assert_eq!(DdlChange::parse("shardCollection", &doc! {}).unwrap(), None);
        assert!(
            DdlChange::parse("createIndexes", &doc! {})
                .unwrap_err()
                .contains("operationDescription")
        );
    }
}
