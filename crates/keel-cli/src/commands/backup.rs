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
    /// The new directory to write the backup to (must not exist), or `s3://bucket/prefix` (a
    /// new prefix; built with the `s3` feature; credentials, region and endpoint from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT, AWS_ALLOW_HTTP).
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
    /// After the backup, restore it into a scratch target and compare it with the manifest (a
    /// restore drill); the result and its time are recorded in the manifest.
    #[arg(long)]
    verify_restore: bool,
    /// The drill's target (default: an embedded keel-testkit server in this process). The drill
    /// restores into `keel_drill_<db>` databases and drops them afterwards.
    #[arg(long, value_name = "URI", requires = "verify_restore")]
    drill_uri: Option<String>,
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
    /// Write a backup as one mongodump archive file (`mongorestore --archive=FILE` reads it).
    Archive {
        /// The backup directory.
        dir: PathBuf,
        /// The archive file to create.
        file: PathBuf,
        /// Gzip the whole archive, as `mongodump --archive --gzip` (`mongorestore --gzip` and
        /// `keel restore --archive` read it).
        #[arg(long)]
        gzip: bool,
    },
    /// Back up on a schedule into new directories under --root, applying a retention policy
    /// after each run (until Ctrl-C).
    Schedule(Box<ScheduleArgs>),
    /// Restore a backup into a scratch target, compare it with its manifest and record the
    /// result (a restore drill).
    Drill {
        /// The backup directory.
        dir: PathBuf,
        /// The drill's target (default: an embedded keel-testkit server in this process).
        #[arg(long, value_name = "URI")]
        target_uri: Option<String>,
    },
}

/// `keel backup schedule --uri URI --root DIR (--every 6h | --cron "0 */6 * * *") [--keep-last N] ...`
#[derive(Debug, Args)]
struct ScheduleArgs {
    /// The deployment to back up.
    #[arg(long)]
    uri: String,
    /// The directory under which each run writes a new `backup-<UTC time>` directory.
    #[arg(long)]
    root: PathBuf,
    /// How often to back up, such as `6h` or `30m` (the first run starts at once).
    #[arg(long, value_parser = parse_every, required_unless_present = "cron", conflicts_with = "cron")]
    every: Option<std::time::Duration>,
    /// When to back up, as a cron expression in UTC, such as "0 */6 * * *" (at 00:00, 06:00,
    /// 12:00 and 18:00) or "@daily"; the first run is at the first match.
    #[arg(long, value_name = "EXPRESSION", value_parser = parse_cron)]
    cron: Option<String>,
    /// Keep the newest N good backups (the newest good one is always kept).
    #[arg(long, default_value_t = 0)]
    keep_last: usize,
    /// Keep the newest good backup of each of the last N days.
    #[arg(long, default_value_t = 0)]
    keep_daily: usize,
    /// Keep the newest good backup of each of the last N ISO weeks.
    #[arg(long, default_value_t = 0)]
    keep_weekly: usize,
    /// Keep the newest good backup of each of the last N months.
    #[arg(long, default_value_t = 0)]
    keep_monthly: usize,
    /// Compress documents files.
    #[arg(long)]
    gzip: bool,
    /// Namespaces to take (repeatable).
    #[arg(long, value_name = "DB.COLL")]
    include: Vec<String>,
    /// Namespaces to leave out (repeatable).
    #[arg(long, value_name = "DB.COLL")]
    exclude: Vec<String>,
    /// Drill each new backup (restore into an embedded keel-testkit or --drill-uri).
    #[arg(long)]
    verify_restore: bool,
    /// The drills' target.
    #[arg(long, value_name = "URI", requires = "verify_restore")]
    drill_uri: Option<String>,
    /// The schedule's name: its health component is `backup:<name>` and its metrics carry
    /// `schedule="<name>"` (default: the root directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Stop after N runs (default: until Ctrl-C).
    #[arg(long)]
    runs: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR/metrics, such as 127.0.0.1:9464 (port 0: any
    /// free port, printed at start): `keel_backup_last_success_timestamp_seconds`,
    /// `_last_duration_seconds`, `_last_bytes`, `_last_documents`,
    /// `_last_verified_timestamp_seconds` and `keel_backup_failures_total`, labelled
    /// `schedule`, beside Keel's own metrics.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// POST every alert (a failed run degrading `backup:<name>`, and its recovery) as JSON to
    /// this URL, with retries; a bearer token is read from KEEL_ALERT_WEBHOOK_TOKEN. Alerts are
    /// always logged as well.
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,
}

fn parse_every(text: &str) -> Result<std::time::Duration, String> {
    keel_config::parse_duration(text).map_err(|e| e.to_string())
}

/// Checks the expression when the arguments are parsed, so a typo fails before connecting.
fn parse_cron(text: &str) -> Result<String, String> {
    keel_backup::CronExpression::parse(text)
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

async fn schedule(args: ScheduleArgs) -> Result<ExitCode, String> {
    let sink = args
        .alert_webhook
        .as_deref()
        .map(super::backup_watch::webhook)
        .transpose()?;
    // Before anything records a metric, so the recorder sees them all.
    let _metrics = match args.metrics_addr {
        Some(addr) => {
            let (bound, server) = super::backup_watch::serve_metrics(addr).await?;
            println!("metrics at http://{bound}/metrics");
            Some(server)
        }
        None => None,
    };
    let keel = super::restore::connect_with(&args.uri, |builder| match sink {
        Some(sink) => builder.alert_sink(sink),
        None => builder,
    })
    .await?;
    let retention = keel_backup::Retention {
        keep_last: args.keep_last,
        daily: args.keep_daily,
        weekly: args.keep_weekly,
        monthly: args.keep_monthly,
    };
    let cadence = match (&args.cron, args.every) {
        (Some(cron), _) => keel_backup::Cadence::cron(cron).map_err(|e| format!("{e}."))?,
        (None, Some(every)) => keel_backup::Cadence::Every(every),
        (None, None) => {
            return Err("`keel backup schedule` needs --every or --cron (see --help).".into());
        }
    };
    // A failed run degrades the health component `backup:<name>` (and alerts through the
    // monitor's sinks, logged at least) until the next success.
    let mut schedule = keel_backup::Schedule::with_cadence(&args.root, cadence)
        .retention(retention)
        .report_health(keel.health());
    if let Some(name) = &args.name {
        schedule = schedule.name(name);
    }
    if let Some(runs) = args.runs {
        schedule = schedule.runs(runs);
    }
    let job = |dir: PathBuf| {
        let keel = keel.clone();
        let (include, exclude) = (args.include.clone(), args.exclude.clone());
        let drill_uri = args.drill_uri.clone();
        let (gzip, verify_restore) = (args.gzip, args.verify_restore);
        async move {
            let manifest = keel_backup::Backup::builder(keel)
                .include(include)
                .exclude(exclude)
                .to(&dir)
                .gzip(gzip)
                .run()
                .await?;
            println!(
                "backup written to {} ({} documents).",
                dir.display(),
                manifest.documents()
            );
            if verify_restore && let Err(e) = drill(&dir, drill_uri.as_deref()).await {
                // The backup stands; its failed drill is recorded in its manifest.
                eprintln!("{e}");
            }
            Ok(manifest)
        }
    };
    let alert = |e: &keel_backup::BackupError| {
        eprintln!(
            "{}",
            keel_core::redact::redact_text(&format!("a scheduled backup failed: {e}."))
        );
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let stats = schedule
        .run(job, alert, shutdown)
        .await
        .map_err(|e| keel_core::redact::redact_text(&format!("{e}.")))?;
    keel.shutdown().await;
    println!(
        "schedule stopped: {} backups written, {} failed, {} runs skipped while one was still going, {} pruned.",
        stats.succeeded,
        stats.failed,
        stats.skipped,
        stats.pruned.len()
    );
    Ok(if stats.failed > 0 && stats.succeeded == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
        Some(BackupCommand::Schedule(args)) => schedule(*args).await,
        Some(BackupCommand::Archive { dir, file, gzip }) => {
            keel_backup::write_archive_with(&dir, &file, gzip).map_err(|e| format!("{e}."))?;
            println!(
                "archive of {} written to {} (mongodump's archive format{}).",
                dir.display(),
                file.display(),
                if gzip { ", gzip'd" } else { "" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(BackupCommand::Drill { dir, target_uri }) => {
            drill(&dir, target_uri.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let uri = args
                .uri
                .ok_or("`keel backup` needs --uri URI and --out DIR (see --help).")?;
            let out = args
                .out
                .ok_or("`keel backup` needs --out DIR (see --help).")?;
            // `s3://bucket/prefix`: written and verified in a staging directory, then uploaded.
            let upload = if super::backup_s3::is_s3(&out) {
                Some(super::backup_s3::Upload::prepare(&out).await?)
            } else {
                None
            };
            let local = upload
                .as_ref()
                .map_or(out.clone(), |u| u.staging().to_owned());
            let keel = super::restore::connect(&uri).await?;
            let display = super::backup_progress::Display::start("backed up");
            let result = keel_backup::Backup::builder(keel.clone())
                .include(args.include)
                .exclude(args.exclude)
                .to(&local)
                .gzip(args.gzip)
                .progress(display.sender())
                .run()
                .await;
            display.finish().await;
            let manifest = result.map_err(|e| keel_core::redact::redact_text(&format!("{e}.")))?;
            keel.shutdown().await;
            let changes = manifest
                .changes
                .as_ref()
                .map(|c| {
                    format!(
                        ", consistent at cluster time {}:{} with {} changes captured",
                        c.to.0, c.to.1, c.count
                    )
                })
                .unwrap_or_default();
            if args.verify_restore {
                // Before any upload, so the drill's record goes up in the manifest.
                drill(&local, args.drill_uri.as_deref()).await?;
            }
            if let Some(upload) = upload {
                println!("{}", upload.finish().await?);
            }
            // Last, once the backup is where it stays (after the upload for `s3://`).
            println!(
                "backup written to {} ({} namespaces, {} documents{changes}).",
                out.display(),
                manifest.namespaces.len(),
                manifest.documents()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A restore drill of `dir` into `target` or an embedded keel-testkit server; its result is
/// printed and recorded in the manifest, and a failure is the command's error.
async fn drill(dir: &Path, target: Option<&str>) -> Result<(), String> {
    let (_server, uri, description) = match target {
        Some(uri) => (None, uri.to_owned(), keel_core::redact::redact_text(uri)),
        None => {
            let server = keel_testkit::TestServer::start()
                .await
                .map_err(|e| format!("cannot start the embedded drill server: {e}."))?;
            let uri = server.uri();
            (
                Some(server),
                uri,
                "an embedded keel-testkit server".to_owned(),
            )
        }
    };
    let keel = super::restore::connect(&uri).await?;
    let result = keel_backup::RestoreDrill::new(dir)
        .target_description(description.clone())
        .run(&keel)
        .await;
    keel.shutdown().await;
    let record = result.map_err(|e| {
        keel_core::redact::redact_text(&format!(
            "the restore drill of {} into {description} failed: {e}.",
            dir.display()
        ))
    })?;
    println!(
        "restore drill passed: {} documents and {} changes restored into {description} and matching the manifest in {:.2} s (recorded in the manifest).",
        record.documents, record.changes, record.seconds
    );
    Ok(())
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
        let drill = keel_backup::Manifest::read(&backup)
            .ok()
            .map(|m| match (&m.last_drill, &m.last_good_drill) {
                (Some(d), _) if d.ok => {
                    format!(", last drill passed {} ({:.2} s)", d.at, d.seconds)
                }
                (Some(d), Some(good)) => {
                    format!(", last drill FAILED {} (last passed {good})", d.at)
                }
                (Some(d), None) => format!(", last drill FAILED {}", d.at),
                (None, _) => ", never drilled".to_owned(),
            })
            .unwrap_or_default();
        let status = match keel_backup::verify(&backup) {
            Ok(report) => format!("complete, verified ({} documents){drill}", report.documents),
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
