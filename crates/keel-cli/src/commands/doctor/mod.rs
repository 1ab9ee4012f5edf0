//! `keel doctor` (placeholder).

use std::process::ExitCode;

/// `keel doctor` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// Connection string.
    #[arg(long)]
    uri: Option<String>,
}

pub(crate) async fn run(_args: DoctorArgs) -> Result<ExitCode, String> {
    Err("`keel doctor` is not implemented yet.".to_owned())
}
