//! `keel doctor`: diagnoses a MongoDB connection step by step — connection string, DNS/SRV,
//! TCP, TLS, MongoDB handshake, authentication, ping latency, topology, pool settings — and
//! says in plain words what is wrong and how to fix it. Credentials are never printed.
//!
//! Each step prints one line as soon as it finishes (`✓` passed, `!` a warning, `✗` failed,
//! `–` not run). The doctor stops at the first failure that later steps depend on; the pool
//! check needs no network and always runs. The exit code is non-zero when a step failed, and
//! the last line on standard error says which, in one sentence.

mod advice;
mod steps;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use keel_config::{Preset, Profile};

use advice::Finding;
use steps::Step;

/// `keel doctor` arguments.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Connection string to diagnose [default: KEEL_URI, the --file's uri, or
    /// mongodb://localhost:27017]. Prefer KEEL_URI for strings with a password: command lines
    /// are visible to other users of the machine.
    #[arg(long, value_name = "URI")]
    uri: Option<String>,
    /// Profile whose pool and timeout settings the connection is checked against: development,
    /// testing or production [default: production, or KEEL_PROFILE].
    #[arg(long, value_name = "PROFILE")]
    profile: Option<Profile>,
    /// Runtime preset: server or serverless [default: server, or KEEL_PRESET].
    #[arg(long, value_name = "PRESET")]
    preset: Option<Preset>,
    /// TOML configuration file to read, as `keel config explain` does.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// How long each network step may take before it counts as failed, such as 5s or 500ms.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    timeout: Duration,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = keel_config::parse_duration(text).map_err(|e| e.to_string())?;
    if duration < Duration::from_millis(100) || duration > Duration::from_secs(120) {
        return Err("the timeout must be between 100ms and 2m".to_owned());
    }
    Ok(duration)
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Nothing wrong.
    Pass,
    /// Works, but something deserves attention.
    Warn,
    /// Does not work; later steps that need this one do not run.
    Fail,
    /// Not run, because an earlier step failed or it does not apply.
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "–",
        }
    }
}

/// The outcome of one step, as printed.
#[derive(Clone, Debug)]
pub(crate) struct Check {
    /// The step's name (`tcp`).
    pub(crate) step: &'static str,
    /// How it ended.
    pub(crate) status: Status,
    /// One line: what was found.
    pub(crate) summary: String,
    /// Further lines: details, and for a warning or failure, the fix.
    pub(crate) notes: Vec<String>,
}

impl Check {
    pub(crate) fn pass(step: &'static str, summary: impl Into<String>) -> Self {
        Self {
            step,
            status: Status::Pass,
            summary: summary.into(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn skip(step: &'static str, summary: impl Into<String>) -> Self {
        Self {
            status: Status::Skip,
            ..Self::pass(step, summary)
        }
    }

    /// A failure explained by `finding`.
    pub(crate) fn fail(step: &'static str, finding: Finding) -> Self {
        Self {
            status: Status::Fail,
            notes: vec![format!("fix: {}", finding.fix)],
            ..Self::pass(step, finding.problem)
        }
    }

    /// A warning explained by `finding`.
    pub(crate) fn warn(step: &'static str, finding: Finding) -> Self {
        Self {
            status: Status::Warn,
            ..Self::fail(step, finding)
        }
    }

    /// Adds a detail line.
    #[must_use]
    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    fn render(&self) -> String {
        let mut out = format!("{} {:<10} {}", self.status.mark(), self.step, self.summary);
        for note in &self.notes {
            out.push_str(&format!("\n  {:<10} {note}", ""));
        }
        out
    }
}

/// Prints checks as they come and remembers the first failure.
#[derive(Default)]
struct Printer {
    failure: Option<Check>,
    warnings: usize,
}

impl Printer {
    fn print(&mut self, check: Check) {
        println!("{}", check.render());
        match check.status {
            Status::Fail if self.failure.is_none() => self.failure = Some(check),
            Status::Warn => self.warnings += 1,
            _ => {}
        }
    }
}

/// Runs every step; the exit code is non-zero when one failed.
pub(crate) async fn run(args: DoctorArgs) -> Result<ExitCode, String> {
    let mut printer = Printer::default();
    let (check, loaded) = steps::uri(&args);
    match &loaded {
        Some(loaded) => println!("keel doctor: {}\n", loaded.display),
        None => println!("keel doctor\n"),
    }
    printer.print(check);
    let Some(loaded) = loaded else {
        for step in Step::ALL {
            printer.print(Check::skip(step.name(), "not checked: the uri step failed"));
        }
        printer.print(Check::skip("pool", "not checked: the uri step failed"));
        return finish(&printer);
    };
    let mut diagnosis = steps::Diagnosis::new(loaded, args.timeout);
    for step in Step::ALL {
        let check = match &printer.failure {
            Some(failed) => Check::skip(
                step.name(),
                format!("not checked: the {} step failed", failed.step),
            ),
            None => diagnosis.run(step).await,
        };
        printer.print(check);
    }
    printer.print(steps::pool(&diagnosis).await);
    finish(&printer)
}

/// The closing line; a failure becomes the error sentence.
fn finish(printer: &Printer) -> Result<ExitCode, String> {
    println!();
    match &printer.failure {
        Some(check) => Err(format!("the {} step failed: {}", check.step, check.summary)),
        None if printer.warnings > 0 => {
            println!(
                "The connection works, with {} warning{} above.",
                printer.warnings,
                if printer.warnings == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("The connection works: every check passed.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_prints_its_fix_under_it() {
        let check = Check::fail(
            "tcp",
            Finding {
                problem: "refused.".to_owned(),
                fix: "start it.".to_owned(),
            },
        );
        assert_eq!(
            check.render(),
            "✗ tcp        refused.\n             fix: start it."
        );
        assert_eq!(Check::skip("tls", "n/a").render(), "– tls        n/a");
    }

    #[test]
    fn timeouts_are_bounded() {
        assert_eq!(parse_timeout("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_timeout("10ms").is_err());
        assert!(parse_timeout("1h").is_err());
        assert!(parse_timeout("2").is_err());
    }
}
