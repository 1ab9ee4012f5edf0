//! Views (`create` with `viewOn`/`pipeline`): `find`, `aggregate` and `count` on a view run its
//! pipeline over its source (recursively, as mongod resolves a view of a view) with the
//! aggregation stages `aggregate.rs` has; writes, index commands and `listIndexes` on a view fail
//! with `CommandNotSupportedOnView` (166) as mongod's jstests `views/views_writes.js` and
//! `views_forbidden.js` expect; direct writes to `system.views` fail with `InvalidNamespace`
//! (`views/invalid_system_views.js`, `system_views_writes.js`).

use bson::{Bson, Document, doc};

use super::aggregate::run_stage;
use super::args::{self, ns};
use super::find::query;
use super::{CommandError, Ctx, codes};
use crate::query::filter::Filter;
use crate::query::sort::SortSpec;
use crate::server::lock;
use crate::storage::views::{SYSTEM_VIEWS, View};

/// CommandNotSupportedOnView (mongod's `error_codes.yml`).
pub(crate) const COMMAND_NOT_SUPPORTED_ON_VIEW: i32 = 166;
/// ViewDepthLimitExceeded.
pub(crate) const VIEW_DEPTH_LIMIT_EXCEEDED: i32 = 149;
/// mongod's `ViewGraph::kMaxViewDepth`.
const MAX_VIEW_DEPTH: usize = 20;

/// Commands that name a collection to write to or to index, refused on a view.
const COLLECTION_ONLY: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "createIndexes",
    "dropIndexes",
    "deleteIndexes",
    "listIndexes",
    "renameCollection",
];

/// Writes users may not send to `system.views` (views are made with `create`).
const WRITES: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
];

/// Refuses `name` when it targets a view (or writes `system.views`); cheap when the database has
/// no views.
pub(super) fn refuse_on_view(
    ctx: &Ctx<'_>,
    name: &str,
    body: &Document,
) -> Result<(), CommandError> {
    if !COLLECTION_ONLY.contains(&name) {
        return Ok(());
    }
    let Some(Bson::String(coll)) = body.get(name) else {
        return Ok(());
    };
    if coll == SYSTEM_VIEWS && WRITES.contains(&name) {
        return Err(CommandError::new(
            codes::INVALID_NAMESPACE,
            format!(
                "cannot write to '{}': create and drop views with the create and drop commands",
                ns(ctx.db, coll)
            ),
        ));
    }
    // renameCollection names a full namespace in the admin database.
    let (db, coll) = match name {
        "renameCollection" => match coll.split_once('.') {
            Some((db, coll)) => (db, coll),
            None => return Ok(()),
        },
        _ => (ctx.db, coll.as_str()),
    };
    if lock(&ctx.shared.storage).view(db, coll).is_some() {
        return Err(on_view(db, coll));
    }
    Ok(())
}

fn on_view(db: &str, coll: &str) -> CommandError {
    CommandError::new(
        COMMAND_NOT_SUPPORTED_ON_VIEW,
        format!("Namespace {} is a view, not a collection", ns(db, coll)),
    )
}

/// `create` with `viewOn`.
pub(super) fn create(ctx: &Ctx<'_>, coll: &str, cmd: &Document) -> Result<Document, CommandError> {
    let view_on = match cmd.get("viewOn") {
        Some(Bson::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => {
            return Err(CommandError::type_mismatch(
                "create.viewOn",
                "string",
                other,
            ));
        }
        None => return Err(CommandError::failed_to_parse("missing 'viewOn'")),
    };
    for option in ["capped", "validator", "timeseries", "clusteredIndex"] {
        if cmd.contains_key(option) {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                format!(
                    "option '{option}' cannot be used with 'viewOn': a view has no storage of its own"
                ),
            ));
        }
    }
    let mut pipeline = Vec::new();
    for stage in args::opt_array(cmd, "pipeline", "create")?
        .into_iter()
        .flatten()
    {
        let Bson::Document(stage) = stage else {
            return Err(CommandError::type_mismatch(
                "create.pipeline",
                "object",
                stage,
            ));
        };
        if stage.len() != 1 {
            return Err(CommandError::new(
                40323,
                "A pipeline stage specification object must contain exactly one field.",
            ));
        }
        if stage.contains_key("$changeStream")
            || stage.contains_key("$out")
            || stage.contains_key("$merge")
        {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                format!(
                    "a view's pipeline cannot contain {}",
                    stage.keys().next().map_or("", |k| k.as_str())
                ),
            ));
        }
        // Parses the stage's arguments the way running it would, so a bad view is refused now.
        run_stage(stage, Vec::new())?;
        pipeline.push(stage.clone());
    }
    let created = lock(&ctx.shared.storage).create_view(ctx.db, coll, View { view_on, pipeline });
    if !created {
        return Err(CommandError::new(
            codes::NAMESPACE_EXISTS,
            format!("Namespace already exists: {}", ns(ctx.db, coll)),
        ));
    }
    Ok(doc! {"ok": 1.0})
}

/// `drop` of a view: `None` when `coll` is not one.
pub(super) fn drop(ctx: &Ctx<'_>, coll: &str) -> Option<Document> {
    lock(&ctx.shared.storage)
        .drop_view(ctx.db, coll)
        .then(|| doc! {"ns": ns(ctx.db, coll), "ok": 1.0})
}

/// `listCollections`' entries for the views of the database.
pub(super) fn list(ctx: &Ctx<'_>, name_only: bool) -> Vec<Document> {
    let views = ctx.with_read_storage(|storage| storage.views(ctx.db));
    views
        .into_iter()
        .map(|(name, view)| {
            if name_only {
                doc! {"name": name, "type": "view"}
            } else {
                doc! {"name": name, "type": "view", "options": view.options(), "info": {"readOnly": true}}
            }
        })
        .collect()
}

/// The documents of the view `coll` (its pipeline run over its source), `None` when `coll`
/// is not a view.
pub(super) fn documents(ctx: &Ctx<'_>, coll: &str) -> Result<Option<Vec<Document>>, CommandError> {
    let resolved = ctx.with_read_storage(|storage| {
        let mut pipelines = Vec::new();
        let mut source = coll.to_owned();
        while let Some(view) = storage.view(ctx.db, &source) {
            if pipelines.len() == MAX_VIEW_DEPTH {
                return Err(CommandError::new(
                    VIEW_DEPTH_LIMIT_EXCEEDED,
                    format!("View depth too deep or view cycle detected. Maximum depth is {MAX_VIEW_DEPTH}"),
                ));
            }
            pipelines.push(view.pipeline);
            source = view.view_on;
        }
        if pipelines.is_empty() {
            return Ok(None);
        }
        let all = Filter::parse(&Document::new())?;
        let docs = query(storage, ctx.db, &source, &all, &SortSpec::default(), 0, 0);
        Ok(Some((pipelines, docs)))
    })?;
    let Some((pipelines, mut docs)) = resolved else {
        return Ok(None);
    };
    // The innermost view's pipeline runs first.
    for pipeline in pipelines.iter().rev() {
        for stage in pipeline {
            docs = run_stage(stage, docs)?;
        }
    }
    Ok(Some(docs))
}

/// `find`'s filter, sort, skip and limit over a view's documents.
pub(super) fn query_view(
    docs: Vec<Document>,
    filter: &Filter,
    sort: &SortSpec,
    skip: usize,
    limit: usize,
) -> Vec<Document> {
    let mut docs: Vec<Document> = docs.into_iter().filter(|d| filter.matches(d)).collect();
    sort.sort(&mut docs);
    let docs = docs.into_iter().skip(skip);
    if limit > 0 {
        docs.take(limit).collect()
    } else {
        docs.collect()
    }
}
