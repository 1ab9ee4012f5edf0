//! Keel's maintenance tasks: `cargo xtask ci` runs every check CI runs, in CI's order.

mod ci;
mod features;
mod invariants;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci          fmt check, clippy (-D warnings), every feature combination, tests, docs (-D warnings), invariants, cargo-deny
  features    cargo clippy of every feature combination of every crate (the powerset for mongokeel)
  invariants  check the architecture invariants of docs/architecture.md (dependency direction…)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("features") => features::run(),
        Some("invariants") => invariants::check_workspace().map(|report| println!("{report}")),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown task `{other}`; run `cargo xtask --help` for the list"
        )),
        None => Err(format!("no task given\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
