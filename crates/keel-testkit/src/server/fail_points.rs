//! The server's fail point registry: decides, per command, whether `failCommand` fires.

use std::time::Duration;

use bson::Document;

use crate::commands::CommandError;
use crate::fail_point::{FailCommand, FailPointMode, FailPointName};

/// Codes for which mongod adds `RetryableWriteError` to a retryable write's error (retryable
/// writes specification, "Determining Retryable Errors").
const RETRYABLE_WRITE_CODES: &[i32] = &[
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
];

/// What the connection must do because the fail point fired.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailAction {
    pub(crate) block: Option<Duration>,
    pub(crate) close: bool,
    pub(crate) error: Option<CommandError>,
    /// Run the command, then attach this (plus labels) to its reply.
    pub(crate) write_concern_error: Option<(Document, Vec<String>)>,
}

/// mongod's `ResumableChangeStreamError` category (`error_codes.yml`): a change stream's
/// `getMore` failing with one of these gets the label, and drivers resume.
pub(crate) const RESUMABLE_CHANGE_STREAM_CODES: &[i32] = &[
    6, 7, 63, 89, 91, 133, 134, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436,
];

/// The configured fail points: `failCommand` and `failGetMoreAfterCursorCheckout`.
#[derive(Debug, Default)]
pub(crate) struct FailPoints {
    command: Slot,
    get_more_checkout: Slot,
}

impl FailPoints {
    /// Installs (or with mode `off`, removes) the fail point `fp` names; returns how many
    /// times the previous one of that name fired (mongod's `count` reply field).
    pub(crate) fn configure(&mut self, fp: FailCommand) -> i64 {
        match fp.name() {
            FailPointName::FailCommand => self.command.configure(fp),
            FailPointName::GetMoreAfterCursorCheckout => self.get_more_checkout.configure(fp),
        }
    }

    /// Turns every fail point off.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// `failCommand` for one command. `retryable_write` is true when the command carries a
    /// `txnNumber` (the server then labels retryable errors).
    pub(crate) fn evaluate(
        &mut self,
        command: &str,
        app_name: Option<&str>,
        retryable_write: bool,
    ) -> Option<FailAction> {
        self.command.evaluate(command, app_name, retryable_write)
    }

    /// `failGetMoreAfterCursorCheckout` for a `getMore` whose cursor was found; a change
    /// stream's error gets `ResumableChangeStreamError` when its code is resumable.
    pub(crate) fn evaluate_get_more_checkout(
        &mut self,
        app_name: Option<&str>,
        change_stream: bool,
    ) -> Option<CommandError> {
        let mut e = self
            .get_more_checkout
            .evaluate("getMore", app_name, false)?
            .error?;
        if change_stream && RESUMABLE_CHANGE_STREAM_CODES.contains(&e.code) {
            e.labels.push("ResumableChangeStreamError".into());
        }
        Some(e)
    }
}

/// One fail point, with its remaining counters.
#[derive(Debug, Default)]
struct Slot {
    active: Option<(FailCommand, u32)>,
    times_entered: i64,
}

impl Slot {
    fn configure(&mut self, fp: FailCommand) -> i64 {
        let count = self.times_entered;
        self.times_entered = 0;
        self.active = match fp.mode() {
            FailPointMode::Off => None,
            FailPointMode::Times(0) => None,
            FailPointMode::Times(n) | FailPointMode::Skip(n) => {
                let n = *n;
                Some((fp, n))
            }
            _ => Some((fp, 0)),
        };
        count
    }

    fn evaluate(
        &mut self,
        command: &str,
        app_name: Option<&str>,
        retryable_write: bool,
    ) -> Option<FailAction> {
        let (fp, counter) = self.active.as_mut()?;
        if !fp.commands().iter().any(|c| c == command) {
            return None;
        }
        if let Some(want) = fp.get_app_name()
            && app_name != Some(want)
        {
            return None;
        }
        let fire = match fp.mode() {
            FailPointMode::AlwaysOn => true,
            FailPointMode::Off => false,
            FailPointMode::Times(_) => {
                *counter = counter.saturating_sub(1);
                true
            }
            FailPointMode::Skip(_) => {
                if *counter > 0 {
                    *counter -= 1;
                    false
                } else {
                    true
                }
            }
            FailPointMode::ActivationProbability(p) => rand::random::<f64>() < *p,
        };
        if !fire {
            return None;
        }
        let action = action_for(fp, retryable_write);
        self.times_entered += 1;
        if matches!(fp.mode(), FailPointMode::Times(_)) && *counter == 0 {
            self.active = None;
        }
        Some(action)
    }
}

fn labels_for(fp: &FailCommand, code: i32, retryable_write: bool) -> Vec<String> {
    match fp.get_error_labels() {
        Some(labels) => labels.to_vec(),
        None if retryable_write && RETRYABLE_WRITE_CODES.contains(&code) => {
            vec!["RetryableWriteError".to_owned()]
        }
        None => Vec::new(),
    }
}

fn action_for(fp: &FailCommand, retryable_write: bool) -> FailAction {
    let error = fp.get_error_code().map(|code| {
        let default = match fp.name() {
            FailPointName::FailCommand => "Failing command via 'failCommand' failpoint",
            FailPointName::GetMoreAfterCursorCheckout => {
                "Failing command via 'failGetMoreAfterCursorCheckout' failpoint"
            }
        };
        let mut e = CommandError::new(code, fp.get_errmsg().unwrap_or(default));
        e.labels = labels_for(fp, code, retryable_write);
        e
    });
    let write_concern_error = fp.get_write_concern_error().map(|wce| {
        let mut wce = wce.clone();
        let code = wce.get_i32("code").unwrap_or(64);
        if !wce.contains_key("codeName") {
            wce.insert("codeName", crate::commands::codes::name(code));
        }
        (wce, labels_for(fp, code, retryable_write))
    });
    FailAction {
        block: fp.block_time(),
        close: fp.closes_connection(),
        error,
        write_concern_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_skip_count_only_matching_commands() {
        let mut fps = FailPoints::default();
        fps.configure(FailCommand::new(["find"]).error_code(1).times(2));
        assert!(fps.evaluate("insert", None, false).is_none());
        assert!(fps.evaluate("find", None, false).is_some());
        assert!(fps.evaluate("find", None, false).is_some());
        assert!(fps.evaluate("find", None, false).is_none());
        fps.configure(FailCommand::new(["find"]).error_code(1).skip(1));
        assert!(fps.evaluate("find", None, false).is_none());
        assert!(fps.evaluate("find", None, false).is_some());
        assert!(fps.evaluate("find", None, false).is_some());
        assert_eq!(fps.configure(FailCommand::off()), 2);
    }

    #[test]
    fn cursor_checkout_fail_point_labels_change_stream_errors() {
        let mut fps = FailPoints::default();
        fps.configure(FailCommand::get_more_after_cursor_checkout(6).times(2));
        assert!(
            fps.evaluate("getMore", None, false).is_none(),
            "separate fail point"
        );
        let e = fps.evaluate_get_more_checkout(None, true).unwrap();
        assert_eq!(e.labels, vec!["ResumableChangeStreamError".to_owned()]);
        let e = fps.evaluate_get_more_checkout(None, false).unwrap();
        assert!(e.labels.is_empty(), "only change streams are labelled");
        assert!(fps.evaluate_get_more_checkout(None, true).is_none());
        fps.configure(FailCommand::get_more_after_cursor_checkout(2));
        assert!(
            fps.evaluate_get_more_checkout(None, true)
                .unwrap()
                .labels
                .is_empty()
        );
        fps.clear();
        assert!(fps.evaluate_get_more_checkout(None, true).is_none());
    }

    #[test]
    fn app_name_filter_and_labels() {
        let mut fps = FailPoints::default();
        fps.configure(FailCommand::new(["insert"]).error_code(91).app_name("a"));
        assert!(fps.evaluate("insert", Some("b"), true).is_none());
        let action = fps.evaluate("insert", Some("a"), true).unwrap();
        assert_eq!(
            action.error.unwrap().labels,
            vec!["RetryableWriteError".to_owned()]
        );
    }
}
