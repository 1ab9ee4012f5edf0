//! Reassembling events that `$changeStreamSplitLargeEvent` split into fragments (mongod 7.0,
//! 6.0.9), so the handler sees one event and the checkpoint never stops inside one.
//!
//! Each fragment has its own `_id` token and `splitEvent: {fragment, of}` (from 1); together
//! they hold the event's top-level fields (MongoDB manual, "$changeStreamSplitLargeEvent";
//! jstests `change_streams/split_large_event.js` rebuilds an event the same way: every field
//! but `_id` and `splitEvent`, fragment after fragment). The reassembled event's `_id` is its
//! last fragment's token: resuming after it continues with the next event, so it is the event's
//! stable id and the checkpoint.

use keel_core::Error;
use mongodb::bson::{Bson, Document, RawDocumentBuf};

/// The stage, appended as the pipeline's last stage by `split_large_events()`.
pub(crate) const STAGE: &str = "$changeStreamSplitLargeEvent";

/// The fragments read so far of one split event.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    /// The event so far, the next fragment expected and the count.
    partial: Option<(Document, i32, i32)>,
}

fn fragment_of(raw: &Document) -> Option<(i32, i32)> {
    let split = raw.get_document("splitEvent").ok()?;
    Some((split.get_i32("fragment").ok()?, split.get_i32("of").ok()?))
}

fn broken(detail: &str) -> Error {
    Error::config(format!(
        "a split change event cannot be reassembled: {detail}; the stream must start before \
         an event's first fragment (never start a consumer from a fragment's token)"
    ))
}

impl Reassembly {
    /// Whether fragments of an event are waiting for the rest (the cached token then points
    /// inside the event: it must not become a checkpoint).
    pub(crate) fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// Takes the next document of the stream as raw BSON: a whole event comes back at once
    /// (untouched: only fragments are parsed), a fragment is kept until the last one completes
    /// the event.
    pub(crate) fn push(&mut self, raw: RawDocumentBuf) -> Result<Option<RawDocumentBuf>, Error> {
        if self.partial.is_none() && !matches!(raw.get("splitEvent"), Ok(Some(_))) {
            return Ok(Some(raw));
        }
        let invalid = |e: &dyn std::fmt::Display| {
            Error::config(format!(
                "the server sent a change event fragment that is not valid BSON: {e}"
            ))
        };
        let doc = Document::try_from(raw.as_ref()).map_err(|e| invalid(&e))?;
        match self.push_document(doc)? {
            Some(event) => RawDocumentBuf::from_document(&event)
                .map(Some)
                .map_err(|e| invalid(&e)),
            None => Ok(None),
        }
    }

    /// [`push`](Self::push) on a parsed document.
    pub(crate) fn push_document(&mut self, raw: Document) -> Result<Option<Document>, Error> {
        let Some((fragment, of)) = fragment_of(&raw) else {
            if self.partial.is_some() {
                return Err(broken("another event came before the last fragment"));
            }
            return Ok(Some(raw));
        };
        let mut raw = raw;
        raw.remove("splitEvent");
        match self.partial.take() {
            None if fragment == 1 => {
                if of == 1 {
                    return Ok(Some(raw));
                }
                self.partial = Some((raw, 2, of));
                Ok(None)
            }
            None => Err(broken(&format!(
                "fragment {fragment} of {of} came without the fragments before it"
            ))),
            Some((mut event, expected, count)) if fragment == expected && of == count => {
                for (key, value) in raw {
                    // The latest fragment's token is the event's `_id`.
                    event.insert(key, value);
                }
                if fragment == count {
                    Ok(Some(event))
                } else {
                    self.partial = Some((event, expected + 1, count));
                    Ok(None)
                }
            }
            Some((_, expected, count)) => Err(broken(&format!(
                "fragment {fragment} of {of} came where fragment {expected} of {count} was \
                 expected"
            ))),
        }
    }
}

/// Whether `stage` is the split stage.
pub(crate) fn is_split_stage(stage: &Document) -> bool {
    stage.keys().next().map(String::as_str) == Some(STAGE)
}

/// The empty stage document.
pub(crate) fn stage() -> Document {
    let mut d = Document::new();
    d.insert(STAGE, Bson::Document(Document::new()));
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn fragment(k: i32, of: i32, field: &str) -> Document {
        doc! {"_id": {"_data": format!("t{k}")}, "splitEvent": {"fragment": k, "of": of}, field: k}
    }

    #[test]
    fn fragments_make_one_event_with_the_last_token() {
        let mut r = Reassembly::default();
        assert_eq!(
            r.push_document(doc! {"_id": 1, "a": 1}).unwrap(),
            Some(doc! {"_id": 1, "a": 1})
        );
        assert_eq!(
            r.push_document(fragment(1, 3, "operationType")).unwrap(),
            None
        );
        assert!(r.in_progress());
        assert_eq!(
            r.push_document(fragment(2, 3, "fullDocument")).unwrap(),
            None
        );
        let event = r
            .push_document(fragment(3, 3, "fullDocumentBeforeChange"))
            .unwrap()
            .unwrap();
        assert!(!r.in_progress());
        assert_eq!(
            event,
            doc! {"_id": {"_data": "t3"}, "operationType": 1, "fullDocument": 2, "fullDocumentBeforeChange": 3}
        );
    }

    #[test]
    fn a_whole_raw_event_passes_through_and_raw_fragments_are_joined() {
        let mut r = Reassembly::default();
        let whole = RawDocumentBuf::from_document(&doc! {"_id": 1, "a": 1}).unwrap();
        assert_eq!(r.push(whole.clone()).unwrap(), Some(whole));
        let raw = |d: Document| RawDocumentBuf::from_document(&d).unwrap();
        assert_eq!(r.push(raw(fragment(1, 2, "a"))).unwrap(), None);
        let event = r.push(raw(fragment(2, 2, "b"))).unwrap().unwrap();
        assert_eq!(
            Document::try_from(event.as_ref()).unwrap(),
            doc! {"_id": {"_data": "t2"}, "a": 1, "b": 2}
        );
    }

    #[test]
    fn a_missing_or_foreign_fragment_is_a_clear_error() {
        let mut r = Reassembly::default();
        let e = r.push_document(fragment(2, 3, "x")).unwrap_err();
        assert!(e.detail().contains("fragment 2 of 3 came without"), "{e}");
        let mut r = Reassembly::default();
        r.push_document(fragment(1, 3, "x")).unwrap();
        assert!(
            r.push_document(fragment(3, 3, "y"))
                .unwrap_err()
                .detail()
                .contains("fragment 2 of 3 was expected")
        );
        let mut r = Reassembly::default();
        r.push_document(fragment(1, 2, "x")).unwrap();
        assert!(
            r.push_document(doc! {"_id": 1})
                .unwrap_err()
                .detail()
                .contains("another event")
        );
    }
}
