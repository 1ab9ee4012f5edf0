//! `$changeStreamSplitLargeEvent` (mongod 7.0, 6.0.9): an event over 16 MB is returned as
//! fragments, each with its own resume token and `splitEvent: {fragment, of}`.
//!
//! As mongod (MongoDB manual, "$changeStreamSplitLargeEvent"; jstests
//! `change_streams/split_large_event.js`): the stage may appear once, as the last stage
//! (else 7182802); an event is split by its top-level fields, in order, as many as fit into
//! each fragment, sub-documents are never split (a single field over the limit is
//! `BSONObjectTooLarge`); a stream resumed from a fragment's token starts with the next
//! fragment, from the last fragment's token with the next event; resuming from a fragment's
//! token without the stage is `ChangeStreamFatalError` (280), as is resuming where the event no
//! longer splits that way. Without the stage an event over 16 MB fails the stream with
//! `BSONObjectTooLarge` (10334). A batch holds at most 16 MB of events once the stage is used,
//! so each fragment travels in a reply of its own.

use bson::{Bson, Document, doc};

use super::spec::Start;
use super::token::{Position, WHOLE};
use crate::commands::handshake::MAX_BSON_OBJECT_SIZE;
use crate::commands::{CommandError, codes};

const STAGE: &str = "$changeStreamSplitLargeEvent";
/// mongod's code for a misplaced or repeated `$changeStreamSplitLargeEvent`.
const MISPLACED: i32 = 7_182_802;

fn max_size() -> usize {
    usize::try_from(MAX_BSON_OBJECT_SIZE).unwrap_or(usize::MAX)
}

/// Whether the stages after `$changeStream` end with the split stage (once, last).
pub(crate) fn parse_stage(stages: &[Bson]) -> Result<bool, CommandError> {
    let is_split = |s: &Bson| matches!(s, Bson::Document(d) if d.keys().next().map(String::as_str) == Some(STAGE));
    let count = stages.iter().filter(|s| is_split(s)).count();
    match count {
        0 => Ok(false),
        1 if stages.last().is_some_and(is_split) => Ok(true),
        _ => Err(CommandError::new(
            MISPLACED,
            "$changeStreamSplitLargeEvent must be the last stage in the pipeline and may \
             appear only once",
        )),
    }
}

/// A fragment's token only resumes a stream that splits events.
pub(crate) fn check_start(start: &Start, split: bool) -> Result<(), CommandError> {
    match start {
        Start::After(p) if p.fragment != WHOLE && !split => Err(fatal(
            "Attempting to resume a change stream from a split event fragment, but the pipeline \
             has no $changeStreamSplitLargeEvent stage",
        )),
        _ => Ok(()),
    }
}

fn fatal(message: &str) -> CommandError {
    CommandError::new(codes::CHANGE_STREAM_FATAL_ERROR, message)
}

fn size(d: &Document) -> usize {
    bson::to_vec(d).map_or(usize::MAX, |v| v.len())
}

fn too_large(bytes: usize) -> CommandError {
    CommandError::new(
        codes::BSON_OBJECT_TOO_LARGE,
        format!(
            "BSONObj size: {bytes} is invalid. Size must be between 0 and {MAX_BSON_OBJECT_SIZE}(16MB)"
        ),
    )
}

/// The documents to return for the event at `pos`, each with its position, leaving out those
/// at or before `position` (a stream resumed from one of its fragments).
pub(crate) fn pieces_after(
    event: Document,
    pos: Position,
    split: bool,
    position: Position,
) -> Result<Vec<(Position, Document)>, CommandError> {
    let resumed_inside =
        position.time == pos.time && position.kind == pos.kind && position.fragment != WHOLE;
    let bytes = size(&event);
    if bytes <= max_size() {
        if resumed_inside {
            return Err(fatal(
                "The resume token points into a split event, but the event no longer needs \
                 splitting (the pipeline or the options changed)",
            ));
        }
        return Ok(vec![(pos, event)]);
    }
    if !split {
        return Err(too_large(bytes));
    }
    let fragments = fragments(event, pos)?;
    if resumed_inside && position.fragment as usize > fragments.len() {
        return Err(fatal(
            "The resume token points to a fragment the event no longer has (the pipeline or \
             the options changed)",
        ));
    }
    Ok(fragments
        .into_iter()
        .filter(|(p, _)| *p > position)
        .collect())
}

/// Splits by top-level fields, in order, as many per fragment as fit.
fn fragments(event: Document, pos: Position) -> Result<Vec<(Position, Document)>, CommandError> {
    let at = |k: u32| Position { fragment: k, ..pos };
    // Room for `_id` (a fragment's token) and `splitEvent` in every fragment.
    let overhead = size(&doc! {"_id": at(1).token(), "splitEvent": {"fragment": 1, "of": 1}});
    let room = max_size().saturating_sub(overhead);
    let mut bodies: Vec<Document> = Vec::new();
    let mut current = Document::new();
    let mut used = 0;
    for (key, value) in event {
        if key == "_id" {
            continue;
        }
        let field = size(&doc! {key.clone(): value.clone()}).saturating_sub(5);
        if field > room {
            return Err(too_large(field));
        }
        if !current.is_empty() && used + field > room {
            bodies.push(std::mem::take(&mut current));
            used = 0;
        }
        current.insert(key, value);
        used += field;
    }
    bodies.push(current);
    let of = i32::try_from(bodies.len()).unwrap_or(i32::MAX);
    Ok(bodies
        .into_iter()
        .zip(1..)
        .map(|(body, k)| {
            let mut d = doc! {
                "_id": at(k).token(),
                "splitEvent": {"fragment": i32::try_from(k).unwrap_or(i32::MAX), "of": of},
            };
            d.extend(body);
            (at(k), d)
        })
        .collect())
}

/// Whether `piece` still fits into the batch (always the first one); counts its bytes. Only
/// streams with the split stage are limited, as mongod limits a reply to 16 MB.
pub(crate) fn fits(bytes: &mut usize, piece: &Document, first: bool, split: bool) -> bool {
    if !split {
        return true;
    }
    let n = size(piece);
    if !first && *bytes + n > max_size() {
        return false;
    }
    *bytes += n;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::change_stream::token::Kind;

    #[test]
    fn the_stage_must_come_once_and_last() {
        let split = Bson::Document(doc! {STAGE: {}});
        let project = Bson::Document(doc! {"$project": {"a": 0}});
        assert!(!parse_stage(std::slice::from_ref(&project)).unwrap());
        assert!(parse_stage(&[project.clone(), split.clone()]).unwrap());
        assert_eq!(
            parse_stage(&[split.clone(), project]).unwrap_err().code,
            MISPLACED
        );
        assert_eq!(
            parse_stage(&[split.clone(), split]).unwrap_err().code,
            MISPLACED
        );
    }

    #[test]
    fn a_large_event_splits_by_top_level_fields_and_resumes_after_a_fragment() {
        let big = "x".repeat(9 * 1024 * 1024);
        let ts = bson::Timestamp {
            time: 1,
            increment: 1,
        };
        let pos = Position::new(ts, Kind::Event);
        let event = doc! {
            "_id": pos.token(), "operationType": "update",
            "fullDocument": {"a": big.clone()}, "updateDescription": {"a": big.clone()},
            "fullDocumentBeforeChange": {"a": big},
        };
        let before = Position::new(ts, Kind::Before);
        let all = pieces_after(event.clone(), pos, true, before).unwrap();
        assert_eq!(all.len(), 3);
        for (k, (p, d)) in all.iter().enumerate() {
            let k = i32::try_from(k).unwrap() + 1;
            assert_eq!(
                d.get_document("splitEvent").unwrap(),
                &doc! {"fragment": k, "of": 3}
            );
            assert_eq!(d.get_document("_id").unwrap(), &p.token());
            assert!(size(d) <= max_size());
        }
        assert!(all[0].1.contains_key("operationType") && all[0].1.contains_key("fullDocument"));
        let rest = pieces_after(event.clone(), pos, true, all[1].0).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, all[2].0);
        assert!(
            pieces_after(event.clone(), pos, true, all[2].0)
                .unwrap()
                .is_empty()
        );
        let parsed = Position::from_token(&Bson::Document(
            all[1].1.get_document("_id").unwrap().clone(),
        ));
        assert_eq!(parsed.unwrap(), all[1].0);
        assert_eq!(
            pieces_after(event, pos, false, before).unwrap_err().code,
            codes::BSON_OBJECT_TOO_LARGE
        );
    }
}
