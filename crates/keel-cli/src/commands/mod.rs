//! The subcommands of `keel`, one module each, and the top-level argument parser.

mod backup;
mod backup_progress;
mod backup_s3;
mod backup_watch;
mod config;
mod demo;
mod doctor;
mod restore;
mod streams;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keel: keep MongoDB applications up when the network, server or load misbehave.
///
/// Start with `keel demo`: it runs a workload through Keel against an embedded test server while
/// injecting faults, and proves at the end that no acknowledged write was lost.
#[derive(Debug, Parser)]
#[command(name = "keel", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload through Keel while faults are injected, then prove nothing was lost.
    Demo(demo::DemoArgs),
    /// Diagnose a MongoDB connection step by step and say how to fix what is wrong.
    Doctor(doctor::DoctorArgs),
    /// Inspect Keel configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Back up a deployment (mongodump layout, verified manifest), or verify and list backups.
    Backup(backup::BackupArgs),
    /// Restore a verified backup into a deployment.
    Restore(restore::RestoreArgs),
    /// Show or override a change-stream consumer's checkpoint.
    #[command(subcommand)]
    Streams(streams::StreamsCommand),
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit code.
    ///
    /// Errors are one sentence, already free of secrets, for `main` to print.
    pub(crate) fn run(self) -> Result<ExitCode, String> {
        match self.command {
            Command::Config(command) => {
                let output = command.run()?;
                // A closed pipe (`keel config explain | head`) is not an error worth reporting.
                let _ = std::io::stdout().lock().write_all(output.as_bytes());
                Ok(ExitCode::SUCCESS)
            }
            Command::Demo(args) => runtime()?.block_on(demo::run(args)),
            Command::Doctor(args) => runtime()?.block_on(doctor::run(args)),
            Command::Backup(args) => runtime()?.block_on(backup::run(args)),
            Command::Restore(args) => runtime()?.block_on(restore::run(args)),
            Command::Streams(command) => runtime()?.block_on(command.run()),
        }
    }
}

/// The async runtime for the commands that talk to a database.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}."))
}
