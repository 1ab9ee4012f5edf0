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
    /// The backup directory.
    #[arg(long)]
    from: PathBuf,
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
    let redact = |e: String| keel_core::redact::redact_text(&e);
    let config = mongokeel::KeelConfig::for_uri(uri)
        .map_err(|e| redact(format!("the configuration for the URI is not valid: {e}")))?;
    mongokeel::Keel::builder(config)
        .build()
        .await
        .map_err(|error| {
            let shown = keel_core::redact::redact_uri(uri);
            crate::failure::sentence(&format!("cannot connect to {shown}"), &shown, &error)
        })
}

/// Runs `keel restore`.
pub(crate) async fn run(args: RestoreArgs) -> Result<ExitCode, String> {
    let keel = connect(&args.uri).await?;
    let display = super::backup_progress::Display::start("restored");
    let mut restore = keel_backup::Restore::from(&args.from)
        .drop(args.drop)
        .progress(display.sender());
    if let (Some(from), Some(to)) = (args.ns_from, args.ns_to) {
        restore = restore.rename(from, to);
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
        args.from.display()
    );
    Ok(ExitCode::SUCCESS)
}
