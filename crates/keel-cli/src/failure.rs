//! Errors as sentences: what failed and what to do, worked out from `keel_core::Error`'s class,
//! server code and the driver's error kind — never from the text of a message — and free of
//! secrets. `keel doctor` explains its steps with [`Cause`]; every other command's error reaches
//! the user through [`sentence`], and `main` prints what the commands return with [`print()`].

use std::io;

use keel_core::codes;
use keel_core::redact::redact_text;
use keel_core::{Error, ErrorClass, ErrorKind};
use mongodb::error::ErrorKind as DriverKind;

/// What is wrong, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// What was observed and what it means, one sentence.
    pub(crate) problem: String,
    /// What to do about it, one sentence.
    pub(crate) fix: String,
}

impl Finding {
    pub(crate) fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// What a failed database call tells about the connection, from the error's classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The server rejected the credentials (`AuthenticationFailed`, a SCRAM failure…).
    BadCredentials,
    /// The server needs credentials this connection does not give (`Unauthorized`, code 13).
    NeedsCredentials,
    /// The server's wire version is one the driver cannot talk to.
    IncompatibleServer,
    /// The server (or something in between) closed the connection.
    Closed,
    /// A connection was open but the answer did not come in time.
    TimedOut,
    /// No server could be selected in time (down, unreachable or refusing connections).
    NoServer,
    /// Anything else; the message is all there is.
    Other,
}

impl Cause {
    /// The cause of `error`.
    pub(crate) fn of(error: &Error) -> Self {
        if error.class() == ErrorClass::Auth {
            // Unauthorized (13): a command ran without the privilege, here because no user is
            // logged in; every other auth code and the driver's own authentication failures
            // (a SCRAM conversation the server ended) mean the credentials were refused.
            return if error.code() == Some(codes::UNAUTHORIZED) {
                Cause::NeedsCredentials
            } else {
                Cause::BadCredentials
            };
        }
        if let Some(driver) = error.driver_error() {
            match driver.kind.as_ref() {
                DriverKind::IncompatibleServer { .. } => return Cause::IncompatibleServer,
                DriverKind::Io(io) => {
                    return match io.kind() {
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Cause::TimedOut,
                        io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::NotConnected => Cause::Closed,
                        _ => Cause::Other,
                    };
                }
                _ => {}
            }
        }
        match (error.kind(), error.class()) {
            (ErrorKind::Unreachable, _) | (_, ErrorClass::ServerSelection) => Cause::NoServer,
            (_, ErrorClass::Timeout) => Cause::TimedOut,
            _ => Cause::Other,
        }
    }
}

/// The error's own words, short and redacted: the driver's description of what happened
/// (without its labels and source chain), or Keel's detail.
pub(crate) fn short_text(error: &Error) -> String {
    let text = match error.driver_error() {
        Some(driver) => driver.kind.to_string(),
        None => error.detail().to_owned(),
    };
    redact_text(text.trim_end_matches('.'))
}

/// Credentials the server rejected; `text` is the server's or driver's message (redacted here).
pub(crate) fn bad_credentials(text: &str) -> Finding {
    Finding::new(
        format!(
            "the server rejected the user name or password ({}).",
            redact_text(text)
        ),
        "check both; percent-encode special characters in the password (@ as %40, : as %3A, / \
         as %2F); the user must exist in the authSource database (authSource=admin for most \
         users); on MongoDB Atlas it is a database user, not your Atlas login.",
    )
}

/// A server that needs credentials the connection does not give.
pub(crate) fn needs_credentials(target: &str, text: &str) -> Finding {
    Finding::new(
        format!("{target} requires authentication, and this connection has none ({text})."),
        "put the user and password in the connection string \
         (mongodb://user:password@host/?authSource=admin, special characters percent-encoded), \
         or set KEEL_USERNAME and KEEL_PASSWORD.",
    )
}

/// A server too old (or too new) for the driver.
pub(crate) fn incompatible_server(target: &str, text: &str) -> Finding {
    Finding::new(
        format!("{target} runs a MongoDB version this driver cannot talk to ({text})."),
        "upgrade the server to MongoDB 4.2 or newer (the Rust driver 3.x's minimum).",
    )
}

/// What `error` means for a command that talked to `target`, when nothing more is known (the
/// doctor, which knows which steps passed, says more).
pub(crate) fn explain(target: &str, error: &Error) -> Finding {
    let text = short_text(error);
    match Cause::of(error) {
        Cause::BadCredentials => bad_credentials(&text),
        Cause::NeedsCredentials => needs_credentials(target, &text),
        Cause::IncompatibleServer => incompatible_server(target, &text),
        Cause::NoServer => Finding::new(
            "no server could be reached in time: it is down, unreachable from here, or refuses \
             the connection.",
            "check that the server runs and that its host and port are right and reachable from \
             this machine.",
        ),
        Cause::Closed => Finding::new(
            format!("{target} closed the connection ({text})."),
            "check that the port is MongoDB's and whether the server requires TLS (tls=true).",
        ),
        Cause::TimedOut => Finding::new(
            format!("{target} did not answer in time ({text})."),
            "check the server's load and the network path to it.",
        ),
        Cause::Other => Finding::new(
            format!(
                "{} ({text}).",
                error.class().user_message().trim_end_matches('.')
            ),
            "`keel config explain` shows the settings in force.",
        ),
    }
}

/// One line saying what failed, why, and what to do: `action` (such as `cannot connect to
/// mongodb://<redacted>@db:27017/`, already free of secrets) followed by [`explain`]'s finding
/// and a pointer to `keel doctor`.
pub(crate) fn sentence(action: &str, target: &str, error: &Error) -> String {
    let finding = explain(target, error);
    format!(
        "{action}: {} Fix: {} `keel doctor --uri '<the same URI>'` checks the connection step \
         by step.",
        finding.problem,
        capitalized(&finding.fix)
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Prints a command's error as the last line on standard error: one line, no secret.
pub(crate) fn print(error: &str) {
    eprintln!("error: {}", last_line(error));
}

/// Commands build their errors from sentences already; this is the last guard, so that a
/// message that slipped through unredacted or over several lines still prints as one.
fn last_line(error: &str) -> String {
    let one_line = error.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    redact_text(&one_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::{DriverFailure, ErrorFacts};
    use mongodb::error::Error as DriverError;

    fn driver(kind: DriverKind) -> Error {
        Error::from_driver(DriverError::from(kind))
    }

    #[test]
    fn causes_come_from_class_code_and_kind() {
        let refused = ErrorFacts::new(DriverFailure::Authentication);
        assert_eq!(
            Cause::of(&Error::from_facts(&refused, "SCRAM failure")),
            Cause::BadCredentials
        );
        let unauthorized = ErrorFacts::new(DriverFailure::Command).with_code(13);
        assert_eq!(
            Cause::of(&Error::from_facts(&unauthorized, "requires authentication")),
            Cause::NeedsCredentials
        );
        let closed = DriverKind::Io(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        assert_eq!(Cause::of(&driver(closed)), Cause::Closed);
        let selection = ErrorFacts::new(DriverFailure::ServerSelection);
        assert_eq!(
            Cause::of(&Error::from_facts(&selection, "no server")),
            Cause::NoServer
        );
        assert_eq!(
            Cause::of(&Error::attempt_timeout(std::time::Duration::from_secs(1))),
            Cause::TimedOut
        );
    }

    /// The wrong password of the issue, as the driver classifies it (the demo's test runs the
    /// real one against keel-testkit with SCRAM).
    #[test]
    fn a_rejected_password_is_a_sentence_not_a_debug_dump() {
        let error = Error::from_facts(
            &ErrorFacts::new(DriverFailure::Authentication),
            "SCRAM failure: Authentication failed.",
        );
        let shown = sentence(
            "cannot connect to mongodb://<redacted>@db:27017/",
            "db:27017",
            &error,
        );
        assert_eq!(
            shown.lines().count(),
            1,
            "one line for the last line of stderr"
        );
        assert!(
            shown.starts_with(
                "cannot connect to mongodb://<redacted>@db:27017/: the server rejected the user \
                 name or password (SCRAM failure: Authentication failed). Fix: Check both;"
            ),
            "{shown}"
        );
        for dump in ["Kind:", "source:", "Some(", "labels"] {
            assert!(!shown.contains(dump), "{dump} in {shown}");
        }
        assert!(
            shown.ends_with("checks the connection step by step."),
            "{shown}"
        );
    }

    #[test]
    fn printed_errors_are_one_line_without_secrets() {
        assert_eq!(
            last_line("a\n  mongodb://u:hunter2@h/ b"),
            "a mongodb://<redacted>@h/ b"
        );
    }
}
