//! The subcommands of `keel`, one module each, and the top-level argument parser.

mod config;

use clap::{Parser, Subcommand};

/// Keel: keep MongoDB applications up when the network, server or load misbehave.
#[derive(Debug, Parser)]
#[command(name = "keel", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect Keel configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

impl Cli {
    /// Runs the chosen subcommand and returns what to print on standard output.
    ///
    /// Errors are one sentence, already free of secrets, for `main` to print.
    pub(crate) fn run(self) -> Result<String, String> {
        match self.command {
            Command::Config(command) => command.run(),
        }
    }
}
