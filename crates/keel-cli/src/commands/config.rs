//! `keel config …`: show the effective Keel configuration and where each value came from.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use keel_config::{KeelConfig, LoadOptions, Preset, Profile};

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print every setting's effective value, its source and the reason for its default.
    ///
    /// Layers, lowest precedence first: defaults, profile, preset, --file, KEEL_* environment
    /// variables, then --uri. Secrets are redacted. Prefer KEEL_URI / KEEL_PASSWORD over --uri
    /// for connection strings with credentials: command lines are visible to other users.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// Profile whose defaults apply: development, testing or production [default: production,
    /// or KEEL_PROFILE].
    #[arg(long, value_name = "PROFILE")]
    profile: Option<Profile>,
    /// Runtime preset: server or serverless [default: server, or KEEL_PRESET].
    #[arg(long, value_name = "PRESET")]
    preset: Option<Preset>,
    /// TOML configuration file to read.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// MongoDB connection string; overrides KEEL_URI and the file.
    #[arg(long, value_name = "URI")]
    uri: Option<String>,
}

impl ConfigCommand {
    pub(crate) fn run(self) -> Result<String, String> {
        match self {
            ConfigCommand::Explain(args) => explain(args),
        }
    }
}

fn explain(args: ExplainArgs) -> Result<String, String> {
    let mut options = LoadOptions::new().process_env();
    options.profile = args.profile;
    options.preset = args.preset;
    options.file = args.file;
    if let Some(uri) = args.uri {
        options = options.set("uri", uri);
    }
    // `ConfigErrors` never holds a secret, so its text is safe to print as is.
    let config = KeelConfig::load(options).map_err(|errors| errors.to_string())?;
    Ok(config.explain().to_string())
}
