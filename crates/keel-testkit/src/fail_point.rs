//! The `failCommand` fail point: the same document mongod's `configureFailPoint` test command
//! takes, as a Rust value that can also produce that command for a real server.
//!
//! Reference: the MongoDB specifications' `transactions/tests` and `server-fail-point`
//! documentation (`configureFailPoint` with `mode` and `data`).

use std::time::Duration;

use bson::{Bson, Document, doc};

use crate::error::TestkitError;

/// When a fail point fires (`mode` of `configureFailPoint`).
#[derive(Debug, Clone, PartialEq)]
pub enum FailPointMode {
    /// `"alwaysOn"`: every matching command.
    AlwaysOn,
    /// `"off"`: disable the fail point.
    Off,
    /// `{times: n}`: the next `n` matching commands, then off.
    Times(u32),
    /// `{skip: n}`: let `n` matching commands pass, then fire on every one after.
    Skip(u32),
    /// `{activationProbability: p}`: each matching command with probability `p` (0.0–1.0).
    ActivationProbability(f64),
}

/// Which of mongod's fail points a [`FailCommand`] configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailPointName {
    /// `failCommand`: fires before the command runs.
    FailCommand,
    /// `failGetMoreAfterCursorCheckout`: fires inside `getMore` once the cursor is found, so the
    /// error gets the labels the server computes for the cursor (`ResumableChangeStreamError`
    /// for change streams).
    GetMoreAfterCursorCheckout,
}

impl FailPointName {
    fn as_str(self) -> &'static str {
        match self {
            Self::FailCommand => "failCommand",
            Self::GetMoreAfterCursorCheckout => "failGetMoreAfterCursorCheckout",
        }
    }
}

/// A `failCommand` fail point (or, from
/// [`get_more_after_cursor_checkout`](Self::get_more_after_cursor_checkout), mongod's
/// `failGetMoreAfterCursorCheckout`).
///
/// ```
/// use keel_testkit::{FailCommand, FailPointMode};
/// let fp = FailCommand::new(["insert"]).error_code(91).times(1);
/// assert_eq!(fp.mode(), &FailPointMode::Times(1));
/// // The exact command to send to a real mongod started with enableTestCommands=1.
/// let cmd = fp.to_command();
/// assert_eq!(cmd.get_str("configureFailPoint").unwrap(), "failCommand");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FailCommand {
    name: FailPointName,
    mode: FailPointMode,
    fail_commands: Vec<String>,
    error_code: Option<i32>,
    errmsg: Option<String>,
    error_labels: Option<Vec<String>>,
    close_connection: bool,
    block_time: Option<Duration>,
    write_concern_error: Option<Document>,
    app_name: Option<String>,
}

impl FailCommand {
    /// A fail point on these command names, `alwaysOn`, that does nothing until configured.
    pub fn new<I, S>(commands: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: FailPointName::FailCommand,
            mode: FailPointMode::AlwaysOn,
            fail_commands: commands.into_iter().map(Into::into).collect(),
            error_code: None,
            errmsg: None,
            error_labels: None,
            close_connection: false,
            block_time: None,
            write_concern_error: None,
            app_name: None,
        }
    }

    /// The `off` fail point (disables any configured `failCommand`).
    pub fn off() -> Self {
        Self::new(Vec::<String>::new()).with_mode(FailPointMode::Off)
    }

    /// mongod's `failGetMoreAfterCursorCheckout`: a `getMore` fails with `code` after its
    /// cursor was found, so the server labels the error as it would a real one — a change
    /// stream's `getMore` failing with a resumable code (e.g. 6 `HostUnreachable`, 10107
    /// `NotWritablePrimary`) gets `ResumableChangeStreamError`, and drivers resume. (A plain
    /// `failCommand` fires before the cursor is known and, as on mongod, gets no such label.)
    ///
    /// ```
    /// use keel_testkit::FailCommand;
    /// let fp = FailCommand::get_more_after_cursor_checkout(6).times(1);
    /// assert_eq!(
    ///     fp.to_command().get_str("configureFailPoint").unwrap(),
    ///     "failGetMoreAfterCursorCheckout"
    /// );
    /// ```
    pub fn get_more_after_cursor_checkout(code: i32) -> Self {
        let mut fp = Self::new(["getMore"]).error_code(code);
        fp.name = FailPointName::GetMoreAfterCursorCheckout;
        fp
    }

    /// Sets the mode.
    #[must_use]
    pub fn with_mode(mut self, mode: FailPointMode) -> Self {
        self.mode = mode;
        self
    }

    /// Fires on the next `n` matching commands only.
    #[must_use]
    pub fn times(self, n: u32) -> Self {
        self.with_mode(FailPointMode::Times(n))
    }

    /// Lets `n` matching commands pass first.
    #[must_use]
    pub fn skip(self, n: u32) -> Self {
        self.with_mode(FailPointMode::Skip(n))
    }

    /// Fires with probability `p`.
    #[must_use]
    pub fn activation_probability(self, p: f64) -> Self {
        self.with_mode(FailPointMode::ActivationProbability(p))
    }

    /// Fails the command with this server error code.
    #[must_use]
    pub fn error_code(mut self, code: i32) -> Self {
        self.error_code = Some(code);
        self
    }

    /// The error message to use with [`error_code`](Self::error_code).
    #[must_use]
    pub fn errmsg(mut self, msg: impl Into<String>) -> Self {
        self.errmsg = Some(msg.into());
        self
    }

    /// Replaces the error labels the server would otherwise compute.
    #[must_use]
    pub fn error_labels<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.error_labels = Some(labels.into_iter().map(Into::into).collect());
        self
    }

    /// Closes the connection instead of replying.
    #[must_use]
    pub fn close_connection(mut self) -> Self {
        self.close_connection = true;
        self
    }

    /// Delays the reply (`blockConnection: true, blockTimeMS`).
    #[must_use]
    pub fn block_connection(mut self, time: Duration) -> Self {
        self.block_time = Some(time);
        self
    }

    /// Runs the command, then attaches this `writeConcernError` to the reply.
    #[must_use]
    pub fn write_concern_error(mut self, wce: Document) -> Self {
        self.write_concern_error = Some(wce);
        self
    }

    /// Only fails commands from connections whose handshake gave this `appName`.
    #[must_use]
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }

    /// The configured mode.
    pub fn mode(&self) -> &FailPointMode {
        &self.mode
    }

    /// The `configureFailPoint` command document equivalent to this value.
    pub fn to_command(&self) -> Document {
        let mode = match &self.mode {
            FailPointMode::AlwaysOn => Bson::from("alwaysOn"),
            FailPointMode::Off => Bson::from("off"),
            FailPointMode::Times(n) => Bson::from(doc! {"times": i64::from(*n)}),
            FailPointMode::Skip(n) => Bson::from(doc! {"skip": i64::from(*n)}),
            FailPointMode::ActivationProbability(p) => {
                Bson::from(doc! {"activationProbability": *p})
            }
        };
        let mut data = doc! {"failCommands": self.fail_commands.clone()};
        if let Some(code) = self.error_code {
            data.insert("errorCode", code);
        }
        if let Some(msg) = &self.errmsg {
            data.insert("errmsg", msg.clone());
        }
        if let Some(labels) = &self.error_labels {
            data.insert("errorLabels", labels.clone());
        }
        if self.close_connection {
            data.insert("closeConnection", true);
        }
        if let Some(t) = self.block_time {
            data.insert("blockConnection", true);
            data.insert(
                "blockTimeMS",
                i64::try_from(t.as_millis()).unwrap_or(i64::MAX),
            );
        }
        if let Some(wce) = &self.write_concern_error {
            data.insert("writeConcernError", wce.clone());
        }
        if let Some(app) = &self.app_name {
            data.insert("appName", app.clone());
        }
        if self.name == FailPointName::GetMoreAfterCursorCheckout {
            // This fail point takes only an error code.
            data = doc! {};
            if let Some(code) = self.error_code {
                data.insert("errorCode", code);
            }
        }
        doc! {"configureFailPoint": self.name.as_str(), "mode": mode, "data": data}
    }

    /// Parses a `configureFailPoint` command for `failCommand`, with mongod's validation.
    pub fn from_command(cmd: &Document) -> Result<Self, TestkitError> {
        let bad = |m: &str| TestkitError::InvalidFailPoint(m.to_owned());
        let name = cmd
            .get_str("configureFailPoint")
            .map_err(|_| bad("configureFailPoint must be a string naming the fail point"))?;
        let name = match name {
            "failCommand" => FailPointName::FailCommand,
            "failGetMoreAfterCursorCheckout" => FailPointName::GetMoreAfterCursorCheckout,
            _ => {
                return Err(TestkitError::InvalidFailPoint(format!(
                    "unknown fail point '{name}' (keel-testkit implements failCommand and \
                     failGetMoreAfterCursorCheckout)"
                )));
            }
        };
        let mode = match cmd.get("mode") {
            Some(Bson::String(s)) if s == "alwaysOn" => FailPointMode::AlwaysOn,
            Some(Bson::String(s)) if s == "off" => FailPointMode::Off,
            Some(Bson::Document(m)) => parse_mode_doc(m)?,
            _ => return Err(bad("mode must be 'alwaysOn', 'off', or a document")),
        };
        let mut fp = Self::new(Vec::<String>::new()).with_mode(mode);
        fp.name = name;
        let data = match cmd.get("data") {
            None => Document::new(),
            Some(Bson::Document(d)) => d.clone(),
            Some(_) => return Err(bad("'data' must be a document")),
        };
        if fp.mode == FailPointMode::Off {
            return Ok(fp);
        }
        if name == FailPointName::GetMoreAfterCursorCheckout {
            let code = data
                .get("errorCode")
                .and_then(int)
                .ok_or_else(|| bad("'errorCode' must be a number"))?;
            fp.fail_commands = vec!["getMore".into()];
            fp.error_code = Some(code);
            return Ok(fp);
        }
        match data.get("failCommands") {
            Some(Bson::Array(names)) => {
                for n in names {
                    match n {
                        Bson::String(s) => fp.fail_commands.push(s.clone()),
                        _ => return Err(bad("'failCommands' must contain only strings")),
                    }
                }
            }
            _ => return Err(bad("'failCommands' must be an array of command names")),
        }
        if let Some(v) = data.get("errorCode") {
            fp.error_code = Some(int(v).ok_or_else(|| bad("'errorCode' must be a number"))?);
        }
        if let Some(v) = data.get("errmsg") {
            fp.errmsg = Some(
                v.as_str()
                    .ok_or_else(|| bad("'errmsg' must be a string"))?
                    .to_owned(),
            );
        }
        if let Some(v) = data.get("errorLabels") {
            let Bson::Array(items) = v else {
                return Err(bad("'errorLabels' must be an array"));
            };
            let labels: Option<Vec<String>> = items
                .iter()
                .map(|l| l.as_str().map(str::to_owned))
                .collect();
            fp.error_labels = Some(labels.ok_or_else(|| bad("'errorLabels' must hold strings"))?);
        }
        if let Some(v) = data.get("closeConnection") {
            fp.close_connection = v
                .as_bool()
                .ok_or_else(|| bad("'closeConnection' must be a boolean"))?;
        }
        if let Some(v) = data.get("blockConnection")
            && v.as_bool()
                .ok_or_else(|| bad("'blockConnection' must be a boolean"))?
        {
            let ms = data
                .get("blockTimeMS")
                .and_then(int)
                .and_then(|ms| u64::try_from(ms).ok())
                .ok_or_else(|| {
                    bad("'blockTimeMS' must be a non-negative number when blockConnection is true")
                })?;
            fp.block_time = Some(Duration::from_millis(ms));
        }
        if let Some(v) = data.get("writeConcernError") {
            let Bson::Document(d) = v else {
                return Err(bad("'writeConcernError' must be a document"));
            };
            fp.write_concern_error = Some(d.clone());
        }
        if let Some(v) = data.get("appName") {
            fp.app_name = Some(
                v.as_str()
                    .ok_or_else(|| bad("'appName' must be a string"))?
                    .to_owned(),
            );
        }
        Ok(fp)
    }

    pub(crate) fn name(&self) -> FailPointName {
        self.name
    }
    pub(crate) fn commands(&self) -> &[String] {
        &self.fail_commands
    }
    pub(crate) fn get_error_code(&self) -> Option<i32> {
        self.error_code
    }
    pub(crate) fn get_errmsg(&self) -> Option<&str> {
        self.errmsg.as_deref()
    }
    pub(crate) fn get_error_labels(&self) -> Option<&[String]> {
        self.error_labels.as_deref()
    }
    pub(crate) fn closes_connection(&self) -> bool {
        self.close_connection
    }
    pub(crate) fn block_time(&self) -> Option<Duration> {
        self.block_time
    }
    pub(crate) fn get_write_concern_error(&self) -> Option<&Document> {
        self.write_concern_error.as_ref()
    }
    pub(crate) fn get_app_name(&self) -> Option<&str> {
        self.app_name.as_deref()
    }
}

fn int(v: &Bson) -> Option<i32> {
    match v {
        Bson::Int32(i) => Some(*i),
        Bson::Int64(i) => i32::try_from(*i).ok(),
        Bson::Double(d) if d.fract() == 0.0 && d.abs() < 2e9 => Some(*d as i32),
        _ => None,
    }
}

fn parse_mode_doc(m: &Document) -> Result<FailPointMode, TestkitError> {
    let bad = |msg: String| TestkitError::InvalidFailPoint(msg);
    let (key, value) = m.iter().next().ok_or_else(|| {
        bad("mode document must have one of times, skip, activationProbability".into())
    })?;
    let count = || {
        int(value)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(format!("'{key}' must be a non-negative integer")))
    };
    match key.as_str() {
        "times" => Ok(FailPointMode::Times(count()?)),
        "skip" => Ok(FailPointMode::Skip(count()?)),
        "activationProbability" => {
            let p = crate::query::compare::as_f64(value)
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| {
                    bad("activationProbability must be a number between 0 and 1".into())
                })?;
            Ok(FailPointMode::ActivationProbability(p))
        }
        other => Err(bad(format!("unknown mode '{other}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trips() {
        let fp = FailCommand::new(["find", "insert"])
            .skip(2)
            .error_code(11600)
            .errmsg("boom")
            .error_labels(["RetryableWriteError"])
            .block_connection(Duration::from_millis(20))
            .write_concern_error(doc! {"code": 64, "errmsg": "wce"})
            .app_name("svc");
        assert_eq!(FailCommand::from_command(&fp.to_command()).unwrap(), fp);
        let checkout = FailCommand::get_more_after_cursor_checkout(6).times(1);
        assert_eq!(
            FailCommand::from_command(&checkout.to_command()).unwrap(),
            checkout
        );
        let closing = FailCommand::new(["ping"])
            .close_connection()
            .activation_probability(0.5);
        assert_eq!(
            FailCommand::from_command(&closing.to_command()).unwrap(),
            closing
        );
    }

    #[test]
    fn bad_documents_are_typed_errors() {
        for cmd in [
            doc! {"configureFailPoint": "nope", "mode": "alwaysOn"},
            doc! {"configureFailPoint": "failCommand", "mode": "sometimes"},
            doc! {"configureFailPoint": "failCommand", "mode": {"times": -1}, "data": {"failCommands": []}},
            doc! {"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {"failCommands": "find"}},
            doc! {"configureFailPoint": "failCommand", "mode": {"activationProbability": 2.0}},
        ] {
            assert!(
                matches!(
                    FailCommand::from_command(&cmd),
                    Err(TestkitError::InvalidFailPoint(_))
                ),
                "{cmd}"
            );
        }
    }
}
