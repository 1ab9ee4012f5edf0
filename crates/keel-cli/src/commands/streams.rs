//! `keel streams status|reset`: show and override a change-stream consumer's checkpoint.

use std::{path::PathBuf, process::ExitCode, time::UNIX_EPOCH};

use clap::{Args, Subcommand};
use keel_change_streams::{
    CheckpointStore, CommitError, FileCheckpointStore, MongoCheckpointStore,
};
use keel_config::{KeelConfig, LoadOptions};
use mongodb::bson::doc;

#[derive(Debug, Subcommand)]
pub(crate) enum StreamsCommand {
    /// Show a consumer's stored checkpoint.
    Status(StoreArgs),
    /// Override a consumer's checkpoint (stop the consumer first).
    Reset(ResetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The consumer's name.
    #[arg(long)]
    name: String,
    /// Checkpoints in this directory (a FileCheckpointStore) instead of MongoDB.
    #[arg(long, value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,
    /// The database holding `keel_checkpoints`.
    #[arg(long, default_value = "keel")]
    database: String,
    /// MongoDB connection string; overrides KEEL_URI (prefer KEEL_URI for credentials).
    #[arg(long, value_name = "URI")]
    uri: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ResetArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// `now` (forget the checkpoint: the consumer starts from its configured start point, now
    /// by default) or a resume token's `_data` string (resume after that token).
    #[arg(long)]
    to: String,
}

impl StreamsCommand {
    pub(crate) async fn run(self) -> Result<ExitCode, String> {
        match self {
            StreamsCommand::Status(args) => {
                let store = open(&args).await?;
                let found = store.load(&args.name).await.map_err(|e| e.to_string())?;
                match found {
                    None => println!("consumer '{}': no checkpoint", args.name),
                    Some(c) => {
                        let at = c
                            .committed_at
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default();
                        println!(
                            "consumer '{}': version {} token {} committed at {} s (unix){}",
                            args.name,
                            c.version,
                            c.token,
                            at.as_secs(),
                            c.cluster_time
                                .map(|t| format!(" cluster time {}.{}", t.time, t.increment))
                                .unwrap_or_default()
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            StreamsCommand::Reset(args) => {
                let store = open(&args.store).await?;
                let name = &args.store.name;
                if args.to == "now" {
                    store.clear(name).await.map_err(|e| e.to_string())?;
                    println!(
                        "consumer '{name}': checkpoint removed; it starts from its start point"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                if args.to.is_empty() || !args.to.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!(
                        "--to must be 'now' or a resume token's _data hex string, not '{}'.",
                        args.to
                    ));
                }
                let token = doc! {"_data": args.to.clone()};
                let current = store.load(name).await.map_err(|e| e.to_string())?;
                let expected = current.map_or(0, |c| c.version);
                match store.commit(name, expected, &token, None, None).await {
                    Ok(c) => {
                        println!(
                            "consumer '{name}': checkpoint set to {token} (version {})",
                            c.version
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e @ CommitError::Fenced { .. }) => Err(format!(
                        "{e}: stop every instance of the consumer, wait for its lease to expire, then retry."
                    )),
                    Err(e) => Err(format!("{e}.")),
                }
            }
        }
    }
}

async fn open(args: &StoreArgs) -> Result<Box<dyn CheckpointStore>, String> {
    if let Some(dir) = &args.checkpoint_dir {
        return Ok(Box::new(FileCheckpointStore::new(dir)));
    }
    let mut options = LoadOptions::new().process_env();
    if let Some(uri) = &args.uri {
        options = options.set("uri", uri.clone());
    }
    let config = KeelConfig::load(options).map_err(|errors| errors.to_string())?;
    let shown = config.uri.to_string();
    let keel = mongokeel::Keel::builder(config)
        .build()
        .await
        .map_err(|error| {
            crate::failure::sentence(&format!("cannot connect to {shown}"), &shown, &error)
        })?;
    Ok(Box::new(MongoCheckpointStore::new(keel, &args.database)))
}
