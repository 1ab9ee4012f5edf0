//! The `keel` command-line tool: parses arguments and hands over to one module per subcommand.

mod commands;
mod failure;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            failure::print(&error);
            ExitCode::FAILURE
        }
    }
}
