//! `keel backup`: a verified, mongodump-compatible backup (`keel_backup::Backup`), and
//! `keel backup verify DIR` / `keel backup list DIR` for backups at rest.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// `keel backup --uri URI --out DIR [--gzip] [--include DB.COLL]... [--exclude DB.COLL]...`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// The deployment to back up (mongodb:// or mongodb+srv://).
    #[arg(long)]
    uri: Option<String>,
    /// The new directory to write the backup to (must not exist).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compress documents files (`<coll>.bson.gz`, as mongodump --gzip).
    #[arg(long)]
    gzip: bool,
    /// Namespaces to take: `db`, `db.*` or `db.coll` (repeatable; default: all user databases).
    #[arg(long, value_name = "DB.COLL")]
    include: Vec<String>,
    /// Namespaces to leave out (repeatable).
    #[arg(long, value_name = "DB.COLL")]
    exclude: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Check a backup at rest: exit 0 only when it is complete and intact.
    Verify {
        /// The backup directory.
        dir: PathBuf,
    },
    /// List the backups in a directory with their completeness and verification status.
    List {
        /// A directory holding backups (or one backup).
        dir: PathBuf,
    },
}

/// Runs `keel backup`.
pub(crate) async fn run(args: BackupArgs) -> Result<ExitCode, String> {
    match args.command {
        Some(BackupCommand::Verify { dir }) => {
            let report = keel_backup::verify(&dir).map_err(|e| format!("{e}."))?;
            println!(
                "{}: complete and intact ({} namespaces, {} documents).",
                dir.display(),
                report.namespaces,
                report.documents
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(BackupCommand::List { dir }) => list(&dir),
        None => {
            let uri = args
                .uri
                .ok_or("`keel backup` needs --uri URI and --out DIR (see --help).")?;
            let out = args
                .out
                .ok_or("`keel backup` needs --out DIR (see --help).")?;
            let keel = super::restore::connect(&uri).await?;
            let display = super::backup_progress::Display::start("backed up");
            let result = keel_backup::Backup::builder(keel.clone())
                .include(args.include)
                .exclude(args.exclude)
                .to(&out)
                .gzip(args.gzip)
                .progress(display.sender())
                .run()
                .await;
            display.finish().await;
            let manifest = result.map_err(|e| keel_core::redact::redact_text(&format!("{e}.")))?;
            keel.shutdown().await;
            println!(
                "backup written to {} ({} namespaces, {} documents).",
                out.display(),
                manifest.namespaces.len(),
                manifest.documents()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(dir: &Path) -> Result<ExitCode, String> {
    let mut dirs = vec![dir.to_owned()];
    if !dir.join(keel_backup::MANIFEST_FILE).exists() {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the directory {}: {e}.", dir.display()))?;
        dirs = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.path())
            .collect();
        dirs.sort();
    }
    for backup in dirs {
        let status = match keel_backup::verify(&backup) {
            Ok(report) => format!("complete, verified ({} documents)", report.documents),
            Err(keel_backup::BackupError::NotIntact { problems, .. }) => {
                format!(
                    "NOT intact: {}",
                    problems.first().map(String::as_str).unwrap_or("")
                )
            }
            Err(_) => "incomplete (no manifest): not usable".to_owned(),
        };
        println!("{}\t{status}", backup.display());
    }
    Ok(ExitCode::SUCCESS)
}
