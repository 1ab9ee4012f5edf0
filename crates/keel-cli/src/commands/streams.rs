//! `keel streams status|reset`: show and override a change-stream consumer's checkpoint.

use std::{path::PathBuf, process::ExitCode, time::UNIX_EPOCH};

use clap::{Args, Subcommand};
use keel_change_streams::{
    CheckpointStore, CommitError, FileCheckpointStore, MongoCheckpointStore,
};
use keel_config::{KeelConfig, LoadOptions};
use mongodb::bson::{Document, Timestamp, doc};

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
    /// by default), a resume token's `_data` string (resume after that token), a cluster time
    /// `SECONDS.INCREMENT` or an RFC 3339 time such as 2026-12-02T01:00:00Z (changes at or after
    /// that time).
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
                let token = target_token(&args.to)?;
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

/// The checkpoint token `--to` asks for: a resume token's `_data` hex string, a cluster time
/// `SECONDS.INCREMENT`, or an RFC 3339 time (its second, increment 0).
fn target_token(to: &str) -> Result<Document, String> {
    if let Some((secs, inc)) = to.split_once('.')
        && let (Ok(time), Ok(increment)) = (secs.parse::<u32>(), inc.parse::<u32>())
    {
        return Ok(keel_change_streams::start_at_token(Timestamp {
            time,
            increment,
        }));
    }
    if let Ok(at) = mongodb::bson::DateTime::parse_rfc3339_str(to) {
        let time = u32::try_from(at.timestamp_millis().div_euclid(1000))
            .map_err(|_| format!("--to {to}: the time must be between 1970 and 2106."))?;
        return Ok(keel_change_streams::start_at_token(Timestamp {
            time,
            increment: 0,
        }));
    }
    if !to.is_empty() && to.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(doc! {"_data": to});
    }
    Err(format!(
        "--to must be 'now', a resume token's _data hex string, a cluster time \
         SECONDS.INCREMENT (such as 1764637200.1) or an RFC 3339 time (such as \
         2026-12-02T01:00:00Z), not '{to}'."
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_takes_a_token_a_cluster_time_or_an_rfc3339_time() {
        assert_eq!(target_token("82AB01"), Ok(doc! {"_data": "82AB01"}));
        let at =
            |time, increment| keel_change_streams::start_at_token(Timestamp { time, increment });
        assert_eq!(target_token("1764637200.3"), Ok(at(1_764_637_200, 3)));
        assert_eq!(
            target_token("2025-12-02T01:00:00Z"),
            Ok(at(1_764_637_200, 0))
        );
        let bad = target_token("yesterday").unwrap_err();
        assert!(
            bad.contains("RFC 3339") && bad.contains("'yesterday'"),
            "{bad}"
        );
    }
}
