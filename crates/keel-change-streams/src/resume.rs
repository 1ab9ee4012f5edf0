//! The Change Streams specification's resume rules, as pure functions (each rule cited).
//!
//! Source: MongoDB specifications, `source/change-streams/change-streams.md`, sections
//! "Resumable Error" and "Resume Process". The driver's `ChangeStream` resumes once by itself;
//! when that fails too, the consumer resumes again by these same rules, paced by a backoff.

use keel_core::{DriverFailure, ErrorFacts, codes, labels, tables};
use mongodb::bson::{Document, Timestamp};

/// Where a stream starts (the `$changeStream` stage's start option).
#[derive(Clone, Debug, PartialEq)]
pub enum StartPoint {
    /// No start option: changes from now on.
    Now,
    /// `resumeAfter`: the first change after this token.
    ResumeAfter(Document),
    /// `startAfter`: like `resumeAfter`, also after an `invalidate` event's token.
    StartAfter(Document),
    /// `startAtOperationTime`: changes at or after this cluster time.
    AtOperationTime(Timestamp),
}

/// Whether a failure lets a change stream resume.
///
/// "Resumable Error": "Any error encountered which is not a server error (e.g. a timeout error
/// or network error)"; "A server error with code 43 (`CursorNotFound`)"; "For servers with wire
/// version 9 or higher (server version 4.4 or higher), any server error with the
/// `ResumableChangeStreamError` error label"; "For servers with wire version less than 9, a
/// server error with one of the following codes" (keel-core's pre-4.4 table). And: "An error on
/// an aggregate command is not a resumable error. Only errors on a getMore command may be
/// considered resumable errors." (a network error is not a server error, so it stays
/// resumable on the aggregate too).
///
/// `wire_version` is that of the connection the command ran on; `None` (unknown) is treated as
/// a modern server (label only) unless the error carries no labels at all.
pub fn is_resumable(facts: &ErrorFacts, wire_version: Option<i32>, on_aggregate: bool) -> bool {
    let server_error = matches!(
        facts.failure,
        DriverFailure::Command | DriverFailure::WriteError | DriverFailure::WriteConcernError
    );
    if !server_error {
        // Not a server error: network, timeout, server selection, pool cleared. Argument,
        // serialization, authentication and shutdown failures are the client's own and do not
        // heal by resuming.
        return matches!(
            facts.failure,
            DriverFailure::Io | DriverFailure::ServerSelection | DriverFailure::PoolCleared
        );
    }
    if on_aggregate {
        return false;
    }
    if facts.code == Some(codes::CURSOR_NOT_FOUND) {
        return true;
    }
    let modern = match wire_version {
        Some(v) => v >= 9,
        // Every server the driver supports today is 4.4+ or labels its errors.
        None => !facts.labels.is_empty() || facts.code.is_none(),
    };
    if modern {
        facts.has_label(labels::RESUMABLE_CHANGE_STREAM_ERROR)
    } else {
        facts
            .code
            .is_some_and(|code| tables::RESUMABLE_CHANGE_STREAM_CODES_PRE_44.contains(&code))
    }
}

/// The start option of the next attempt ("Resume Process").
///
/// "If there is a cached resumeToken: If the ChangeStream was started with startAfter and has
/// yet to return a result document: The driver MUST set startAfter to the cached resumeToken
/// [...] Else: The driver MUST set resumeAfter to the cached resumeToken"; "Else if there is no
/// cached resumeToken and the ChangeStream has a saved operation time (either from an
/// originally specified startAtOperationTime or saved from the original aggregation) [...] The
/// driver MUST set startAtOperationTime"; "Else: [...] use the original aggregation command".
pub fn resume_start(
    original: &StartPoint,
    cached_token: Option<&Document>,
    returned_any: bool,
    saved_operation_time: Option<Timestamp>,
) -> StartPoint {
    if let Some(token) = cached_token {
        if matches!(original, StartPoint::StartAfter(_)) && !returned_any {
            return StartPoint::StartAfter(token.clone());
        }
        return StartPoint::ResumeAfter(token.clone());
    }
    let operation_time = match original {
        StartPoint::AtOperationTime(at) => Some(*at),
        _ => saved_operation_time,
    };
    match operation_time {
        Some(at) => StartPoint::AtOperationTime(at),
        None => original.clone(),
    }
}

/// The token cached when a stream starts ("Updating the Cached Resume Token": "If startAfter is
/// set, cache it. Else if resumeAfter is set, cache it. Else, resumeToken remains unset.").
pub fn initial_cached_token(start: &StartPoint) -> Option<Document> {
    match start {
        StartPoint::StartAfter(token) | StartPoint::ResumeAfter(token) => Some(token.clone()),
        StartPoint::Now | StartPoint::AtOperationTime(_) => None,
    }
}

/// Whether the failure is `ChangeStreamHistoryLost` (286): the start point fell off the oplog,
/// so resuming from it again can never succeed (a policy decides, never a loop).
pub fn is_history_lost(facts: &ErrorFacts) -> bool {
    facts.code == Some(286)
}

/// Whether the consumer re-opens its stream from its own cached token after a failure: the
/// specification's rule ([`is_resumable`]), except for `ChangeStreamHistoryLost`, which goes to
/// the history-lost policy when the consumer's own `aggregate` meets it, and re-opens when a
/// stream already open meets it. There it may come from the driver's own resume, not from the
/// consumer's token: mongodb 3.9.1 builds a retried resume `aggregate` from the stream's
/// original options (the cached token was taken out of its resume data by the first attempt),
/// whose start point is gone once the stream has been open longer than the oplog holds. The
/// consumer's own open from its token then decides (a 286 there is history lost indeed).
pub fn consumer_resumes(facts: &ErrorFacts, wire_version: Option<i32>, on_aggregate: bool) -> bool {
    if is_history_lost(facts) {
        return !on_aggregate;
    }
    is_resumable(facts, wire_version, on_aggregate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn server(code: i32) -> ErrorFacts {
        ErrorFacts::new(DriverFailure::Command).with_code(code)
    }

    #[test]
    fn network_errors_are_resumable_even_on_the_aggregate() {
        let io = ErrorFacts::new(DriverFailure::Io);
        assert!(is_resumable(&io, Some(21), false));
        assert!(is_resumable(&io, Some(21), true));
        assert!(is_resumable(
            &ErrorFacts::new(DriverFailure::ServerSelection),
            None,
            true
        ));
    }

    #[test]
    fn client_side_failures_are_not_resumable() {
        for failure in [
            DriverFailure::InvalidArgument,
            DriverFailure::Serialization,
            DriverFailure::Authentication,
            DriverFailure::ClientShutdown,
            DriverFailure::MissingResumeToken,
        ] {
            assert!(
                !is_resumable(&ErrorFacts::new(failure), Some(21), false),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn cursor_not_found_is_resumable_without_a_label() {
        assert!(is_resumable(&server(43), Some(21), false));
        assert!(is_resumable(&server(43), Some(6), false));
    }

    #[test]
    fn wire_9_and_later_follow_the_label_only() {
        let labelled = server(10107).with_label("ResumableChangeStreamError");
        assert!(is_resumable(&labelled, Some(9), false));
        // The same code without the label is not resumable on a 4.4+ server.
        assert!(!is_resumable(&server(10107), Some(9), false));
        // Any code with the label is.
        assert!(is_resumable(
            &server(2).with_label("ResumableChangeStreamError"),
            Some(21),
            false
        ));
    }

    #[test]
    fn older_servers_follow_the_code_list() {
        for code in [
            6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 13388, 234,
            133,
        ] {
            assert!(is_resumable(&server(code), Some(8), false), "{code}");
        }
        assert!(!is_resumable(&server(2), Some(8), false));
        assert!(!is_resumable(&server(286), Some(8), false));
    }

    #[test]
    fn a_server_error_on_the_initial_aggregate_is_not_resumable() {
        let labelled = server(10107).with_label("ResumableChangeStreamError");
        assert!(!is_resumable(&labelled, Some(21), true));
        assert!(!is_resumable(&server(43), Some(21), true));
    }

    #[test]
    fn resume_uses_start_after_until_a_document_was_returned() {
        let original = StartPoint::StartAfter(doc! {"_data": "old"});
        let cached = doc! {"_data": "pbrt"};
        assert_eq!(
            resume_start(&original, Some(&cached), false, None),
            StartPoint::StartAfter(cached.clone())
        );
        assert_eq!(
            resume_start(&original, Some(&cached), true, None),
            StartPoint::ResumeAfter(cached)
        );
    }

    #[test]
    fn resume_after_replaces_any_original_option_when_a_token_is_cached() {
        let cached = doc! {"_data": "t"};
        let at = Timestamp {
            time: 1,
            increment: 1,
        };
        for original in [
            StartPoint::Now,
            StartPoint::AtOperationTime(at),
            StartPoint::ResumeAfter(doc! {}),
        ] {
            assert_eq!(
                resume_start(&original, Some(&cached), false, None),
                StartPoint::ResumeAfter(cached.clone())
            );
        }
    }

    #[test]
    fn without_a_token_the_operation_time_is_used_then_the_original() {
        let at = Timestamp {
            time: 7,
            increment: 2,
        };
        let saved = Timestamp {
            time: 9,
            increment: 0,
        };
        assert_eq!(
            resume_start(&StartPoint::AtOperationTime(at), None, false, Some(saved)),
            StartPoint::AtOperationTime(at)
        );
        assert_eq!(
            resume_start(&StartPoint::Now, None, false, Some(saved)),
            StartPoint::AtOperationTime(saved)
        );
        assert_eq!(
            resume_start(&StartPoint::Now, None, false, None),
            StartPoint::Now
        );
    }

    #[test]
    fn the_start_token_is_cached_first() {
        let t = doc! {"_data": "x"};
        assert_eq!(
            initial_cached_token(&StartPoint::StartAfter(t.clone())),
            Some(t.clone())
        );
        assert_eq!(
            initial_cached_token(&StartPoint::ResumeAfter(t.clone())),
            Some(t)
        );
        assert_eq!(initial_cached_token(&StartPoint::Now), None);
    }

    #[test]
    fn history_lost_is_recognised() {
        assert!(is_history_lost(&server(286)));
        assert!(!is_history_lost(&server(43)));
    }

    #[test]
    fn history_lost_goes_to_the_policy_on_the_consumers_open_and_re_opens_on_a_stream() {
        let lost = server(286);
        assert!(!consumer_resumes(&lost, Some(21), true));
        assert!(consumer_resumes(&lost, Some(21), false));
        // Everything else follows the specification.
        assert!(consumer_resumes(&server(43), Some(21), false));
        assert!(!consumer_resumes(&server(43), Some(21), true));
        assert!(!consumer_resumes(&server(10107), Some(21), false));
    }
}
