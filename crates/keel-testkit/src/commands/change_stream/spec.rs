//! Parsing `aggregate` with a first `$changeStream` stage: the scope (collection, database or
//! whole deployment), the `$changeStream` options, and the stages allowed after it.

use bson::{Bson, Document};

use super::token::{Kind, Position};
use crate::commands::{CommandError, args, codes};

/// Which changes a stream sees.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scope {
    Collection {
        db: String,
        coll: String,
    },
    Database {
        db: String,
    },
    /// `allChangesForCluster` on `admin`: every database but `admin`, `config` and `local`.
    Cluster,
}

impl Scope {
    /// The cursor namespace mongod reports (and `getMore` must name).
    pub(crate) fn cursor_ns(&self) -> String {
        match self {
            Scope::Collection { db, coll } => format!("{db}.{coll}"),
            Scope::Database { db } => format!("{db}.$cmd.aggregate"),
            Scope::Cluster => "admin.$cmd.aggregate".into(),
        }
    }
}

/// `fullDocument`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FullDocument {
    /// Only inserts and replaces carry the document.
    Default,
    /// Updates carry the document as it is when the event is returned.
    UpdateLookup,
    /// Updates carry the post-image if the collection records images, else null.
    WhenAvailable,
    /// Like `WhenAvailable`, but a missing post-image is an error.
    Required,
}

/// `fullDocumentBeforeChange`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BeforeChange {
    Off,
    WhenAvailable,
    Required,
}

/// Where a new stream starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Start {
    /// Now (no resume option).
    Now,
    /// Strictly after a position (`resumeAfter`, `startAfter`, `startAtOperationTime`).
    After(Position),
}

/// A parsed change stream request.
#[derive(Debug, Clone)]
pub(crate) struct StreamSpec {
    pub(crate) scope: Scope,
    pub(crate) full_document: FullDocument,
    pub(crate) before_change: BeforeChange,
    pub(crate) start: Start,
    /// The stages after `$changeStream`, applied to each event.
    pub(crate) stages: Vec<Document>,
    /// `$changeStreamSplitLargeEvent` ends the pipeline (see `split`).
    pub(crate) split: bool,
    /// `showExpandedEvents: true`: DDL events and `collectionUUID` (see `expanded`).
    pub(crate) expanded: bool,
}

/// Stages mongod allows after `$changeStream` that this server implements.
const ALLOWED_STAGES: &[&str] = &["$match", "$project", "$addFields", "$set", "$unset"];

/// Whether `pipeline` asks for a change stream.
pub(crate) fn is_change_stream(pipeline: &[Bson]) -> bool {
    pipeline
        .first()
        .and_then(Bson::as_document)
        .is_some_and(|s| s.contains_key("$changeStream"))
}

/// Parses the pipeline of an `aggregate` on `db` (`coll: None` for `{aggregate: 1}`).
pub(crate) fn parse(
    db: &str,
    coll: Option<&str>,
    pipeline: &[Bson],
) -> Result<StreamSpec, CommandError> {
    let Some(Bson::Document(first)) = pipeline.first() else {
        return Err(CommandError::failed_to_parse(
            "empty change stream pipeline",
        ));
    };
    let options = args::opt_doc(first, "$changeStream", "$changeStream")?
        .ok_or_else(|| CommandError::type_mismatch("$changeStream", "object", &Bson::Null))?;
    let all = args::opt_bool(options, "allChangesForCluster", "$changeStream")?.unwrap_or(false);
    let scope = match (coll, all) {
        (None, true) if db == "admin" => Scope::Cluster,
        (_, true) => {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "A $changeStream with 'allChangesForCluster:true' may only be opened on the \
                 'admin' database, and with no collection name",
            ));
        }
        _ if matches!(db, "admin" | "config" | "local") => {
            return Err(CommandError::new(
                codes::INVALID_NAMESPACE,
                format!("$changeStream may not be opened on the internal {db} database"),
            ));
        }
        (Some(coll), false) => Scope::Collection {
            db: db.to_owned(),
            coll: coll.to_owned(),
        },
        (None, false) => Scope::Database { db: db.to_owned() },
    };
    let full_document = match options.get("fullDocument") {
        None | Some(Bson::Null) => FullDocument::Default,
        Some(Bson::String(s)) => match s.as_str() {
            "default" => FullDocument::Default,
            "updateLookup" => FullDocument::UpdateLookup,
            "whenAvailable" => FullDocument::WhenAvailable,
            "required" => FullDocument::Required,
            other => {
                return Err(CommandError::bad_value(format!(
                    "Enumeration value '{other}' for field '$changeStream.fullDocument' is not a \
                     valid value."
                )));
            }
        },
        Some(other) => {
            return Err(CommandError::type_mismatch(
                "$changeStream.fullDocument",
                "string",
                other,
            ));
        }
    };
    let before_change = match options.get("fullDocumentBeforeChange") {
        None | Some(Bson::Null) => BeforeChange::Off,
        Some(Bson::String(s)) => match s.as_str() {
            "off" => BeforeChange::Off,
            "whenAvailable" => BeforeChange::WhenAvailable,
            "required" => BeforeChange::Required,
            other => {
                return Err(CommandError::bad_value(format!(
                    "Enumeration value '{other}' for field \
                     '$changeStream.fullDocumentBeforeChange' is not a valid value."
                )));
            }
        },
        Some(other) => {
            return Err(CommandError::type_mismatch(
                "$changeStream.fullDocumentBeforeChange",
                "string",
                other,
            ));
        }
    };
    let start = parse_start(options)?;
    let expanded = super::expanded::parse_option(options)?;
    for key in options.keys() {
        if !matches!(
            key.as_str(),
            "fullDocument"
                | "fullDocumentBeforeChange"
                | "resumeAfter"
                | "startAfter"
                | "startAtOperationTime"
                | "allChangesForCluster"
                | "showExpandedEvents"
        ) {
            return Err(CommandError::new(
                40415,
                format!("BSON field '$changeStream.{key}' is an unknown field."),
            ));
        }
    }
    let mut stages = Vec::new();
    let split = super::split::parse_stage(&pipeline[1..])?;
    let user_stages = &pipeline[1..pipeline.len() - usize::from(split)];
    for stage in user_stages {
        let Bson::Document(stage) = stage else {
            return Err(CommandError::type_mismatch(
                "aggregate.pipeline",
                "object",
                stage,
            ));
        };
        let name = stage.keys().next().map_or("", String::as_str);
        if name == "$changeStream" {
            return Err(CommandError::new(
                40602,
                "$changeStream is only valid as the first stage in a pipeline.",
            ));
        }
        if !ALLOWED_STAGES.contains(&name) {
            return Err(CommandError::new(
                codes::ILLEGAL_OPERATION,
                format!("{name} is not permitted in a $changeStream pipeline"),
            ));
        }
        stages.push(stage.clone());
    }
    super::split::check_start(&start, split)?;
    Ok(StreamSpec {
        scope,
        full_document,
        before_change,
        start,
        stages,
        split,
        expanded,
    })
}

fn parse_start(options: &Document) -> Result<Start, CommandError> {
    let given: Vec<&str> = ["resumeAfter", "startAfter", "startAtOperationTime"]
        .into_iter()
        .filter(|k| options.get(*k).is_some_and(|v| !matches!(v, Bson::Null)))
        .collect();
    if given.len() > 1 {
        return Err(CommandError::new(
            40674,
            "Only one type of resume option is allowed, but multiple were found.",
        ));
    }
    Ok(match given.first().copied() {
        None => Start::Now,
        Some("startAtOperationTime") => match options.get("startAtOperationTime") {
            Some(Bson::Timestamp(ts)) => Start::After(Position::new(*ts, Kind::Before)),
            Some(other) => {
                return Err(CommandError::type_mismatch(
                    "$changeStream.startAtOperationTime",
                    "timestamp",
                    other,
                ));
            }
            None => Start::Now,
        },
        Some(key) => {
            let token = options.get(key).unwrap_or(&Bson::Null);
            let position = Position::from_token(token)?;
            if key == "resumeAfter" && position.kind == Kind::Invalidate {
                return Err(CommandError::new(
                    codes::INVALID_RESUME_TOKEN,
                    "Attempting to resume a change stream using 'resumeAfter' is not allowed \
                     from an invalidate notification.",
                ));
            }
            Start::After(position)
        }
    })
}
