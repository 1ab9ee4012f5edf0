//! `keel restore`: a backup verified, then written back (`keel_backup::Restore`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// `keel restore --uri URI --from DIR [--drop] [--ns-from A --ns-to B]`
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The deployment to restore into.
    #[arg(long)]
    uri: String,
    /// The backup directory, or `s3://bucket/prefix` (built with the `s3` feature; credentials
    /// from the AWS_* environment).
    #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
    from: Option<PathBuf>,
    /// A mongodump archive file (`mongodump --archive=FILE`, gzip'd or not) to restore instead.
    #[arg(long, value_name = "FILE")]
    archive: Option<PathBuf>,
    /// Drop each collection before restoring it (otherwise documents are upserted by _id).
    #[arg(long)]
    drop: bool,
    /// Restore this namespace (`db` or `db.coll`) under the name given by --ns-to.
    #[arg(long, requires = "ns_to")]
    ns_from: Option<String>,
    /// The new name for --ns-from.
    #[arg(long, requires = "ns_from")]
    ns_to: Option<String>,
}

/// A `Keel` handle for a URI given on the command line; errors never show credentials.
pub(crate) async fn connect(uri: &str) -> Result<mongokeel::Keel, String> {
    connect_with(uri, |builder| builder).await
}

/// [`connect`] with more settings on the builder (alert sinks).
pub(crate) async fn connect_with(
    uri: &str,
    configure: impl FnOnce(mongokeel::KeelBuilder) -> mongokeel::KeelBuilder,
) -> Result<mongokeel::Keel, String> {
    let redact = |e: String| keel_core::redact::redact_text(&e);
    let config = mongokeel::KeelConfig::for_uri(uri)
        .map_err(|e| redact(format!("the configuration for the URI is not valid: {e}")))?;
    configure(mongokeel::Keel::builder(config))
        .build()
        .await
        .map_err(|error| {
            let shown = keel_core::redact::redact_uri(uri);
            crate::failure::sentence(&format!("cannot connect to {shown}"), &shown, &error)
        })
}

/// Runs `keel restore`.
pub(crate) async fn run(args: RestoreArgs) -> Result<ExitCode, String> {
    // An archive is checked and unpacked into a private directory first, then restored from it.
    let unpacked = match &args.archive {
        Some(file) => {
            let dir =
                std::env::temp_dir().join(format!("keel-restore-archive-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            keel_backup::read_archive(file, &dir).map_err(|e| format!("{e}."))?;
            Some(dir)
        }
        None => None,
    };
    // `s3://bucket/prefix`: downloaded and verified into a staging directory first.
    let downloaded = match &args.from {
        Some(from) if super::backup_s3::is_s3(from) => {
            Some(super::backup_s3::download(from).await?)
        }
        _ => None,
    };
    let from = match (&unpacked, &downloaded, &args.from) {
        (Some(dir), _, _) | (None, None, Some(dir)) => dir.clone(),
        (None, Some(staging), _) => staging.path().to_owned(),
        (None, _, None) => {
            return Err("`keel restore` needs --from DIR or --archive FILE.".into());
        }
    };
    // What the user named: the archive or the `--from` location (an `s3://` URL, not the
    // staging directory it was downloaded to).
    let shown = args
        .archive
        .clone()
        .or_else(|| args.from.clone())
        .unwrap_or_else(|| from.clone());
    let result = restore_from(&args, &from, &shown).await;
    if let Some(dir) = unpacked {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

async fn restore_from(
    args: &RestoreArgs,
    from: &std::path::Path,
    shown: &std::path::Path,
) -> Result<ExitCode, String> {
    let keel = connect(&args.uri).await?;
    let display = super::backup_progress::Display::start("restored");
    let mut restore = keel_backup::Restore::from(from)
        .drop(args.drop)
        .progress(display.sender());
    if let (Some(ns_from), Some(ns_to)) = (&args.ns_from, &args.ns_to) {
        restore = restore.rename(ns_from.clone(), ns_to.clone());
    }
    let result = restore.into(&keel).await;
    display.finish().await;
    let report = result.map_err(|e| keel_core::redact::redact_text(&format!("{e}.")))?;
    keel.shutdown().await;
    let resumed = if report.resumed > 0 {
        format!(
            ", continuing an interrupted restore of {} namespaces",
            report.resumed
        )
    } else {
        String::new()
    };
    println!(
        "restored {} namespaces, {} documents and {} changes to the consistent point, from {}{resumed}.",
        report.namespaces,
        report.documents,
        report.changes,
        shown.display()
    );
    Ok(ExitCode::SUCCESS)
}
