//! Scheduled backups: one run every interval or at every time a cron expression matches
//! ([`Cadence`]), into a new directory under a root, then the retention policy applied. Runs
//! never overlap: the loop awaits each run, and due times that
//! fall while a run is still going are skipped (counted and logged), not queued: the next run
//! starts at the first due time after the long one ended; a lock file in
//! the root keeps a second scheduler (another process) off the same directory.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cadence::Cadence;
use crate::schedule_report::RunReporter;

use crate::retention::{Retention, list_backups};
use crate::{BackupError, Manifest};

/// The lock file a scheduler holds in its root.
pub const SCHEDULE_LOCK: &str = ".keel-schedule.lock";

/// What a scheduler did, for metrics and the CLI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleStats {
    /// Runs that produced a backup.
    pub succeeded: u64,
    /// Runs that failed (the backup left nothing behind).
    pub failed: u64,
    /// Ticks that fell due while a run was still going, and were skipped.
    pub skipped: u64,
    /// Backups deleted by the retention policy.
    pub pruned: Vec<PathBuf>,
    /// When the last successful run finished (RFC 3339).
    pub last_success: Option<String>,
    /// How long the last successful run took.
    pub last_duration: Option<Duration>,
    /// Documents in the last successful backup.
    pub last_documents: u64,
    /// The last failure, as a sentence.
    pub last_error: Option<String>,
}

/// A backup schedule over a root directory.
#[derive(Debug, Clone)]
pub struct Schedule {
    root: PathBuf,
    cadence: Cadence,
    wall_start: Option<SystemTime>,
    name: Option<String>,
    #[cfg(feature = "health")]
    health: Option<keel_health::HealthHandle>,
    retention: Retention,
    runs: Option<u64>,
}

/// The lock on a root, released on drop.
struct RootLock(PathBuf);

impl Drop for RootLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl RootLock {
    /// Takes the root's lock; a lock left by a process that no longer runs is taken over.
    fn take(root: &Path) -> Result<Self, BackupError> {
        let path = root.join(SCHEDULE_LOCK);
        for _ in 0..2 {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            match options.open(&path) {
                Ok(mut file) => {
                    use std::io::Write as _;
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = holder
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if alive {
                        return Err(BackupError::ScheduleLocked {
                            root: root.to_owned(),
                            pid: holder.trim().to_owned(),
                        });
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(BackupError::io("creating the lock", &path, e)),
            }
        }
        Err(BackupError::ScheduleLocked {
            root: root.to_owned(),
            pid: "unknown".into(),
        })
    }
}

impl Schedule {
    /// A run every `every` (the first at once) into new directories under `root`.
    pub fn new(root: impl Into<PathBuf>, every: Duration) -> Self {
        Self::with_cadence(root, Cadence::Every(every))
    }

    /// A run at every time the cron expression matches, in UTC (`0 */6 * * *`: at 00:00, 06:00,
    /// 12:00 and 18:00), the first one at the first match after the start; a bad expression is
    /// a [`BackupError::BadCron`].
    pub fn cron(root: impl Into<PathBuf>, expression: &str) -> Result<Self, BackupError> {
        Ok(Self::with_cadence(root, Cadence::cron(expression)?))
    }

    /// A schedule of the given cadence (an interval shorter than 1 s is taken as 1 s).
    pub fn with_cadence(root: impl Into<PathBuf>, cadence: Cadence) -> Self {
        let cadence = match cadence {
            Cadence::Every(every) => Cadence::Every(every.max(Duration::from_secs(1))),
            cron => cron,
        };
        Self {
            root: root.into(),
            cadence,
            wall_start: None,
            name: None,
            #[cfg(feature = "health")]
            health: None,
            retention: Retention::default(),
            runs: None,
        }
    }

    /// Takes the wall-clock time at which [`run`](Self::run) starts to be `time` instead of the
    /// system clock's (for tests and dry runs). Either way the scheduler then measures time with
    /// tokio's monotonic clock from that start, so a clock step (NTP) does not make it run twice
    /// or skip a run, and tests with paused time are exact.
    pub fn starting_at(mut self, time: SystemTime) -> Self {
        self.wall_start = Some(time);
        self
    }

    /// The schedule's name: the `schedule` label of its `keel_backup_*` metrics and its health
    /// component `backup:<name>` (default: the root directory's last component).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Reports into keel-health (`keel.health()`): a component `backup:<name>`, registered
    /// while the schedule runs, degraded with a sentence when a run fails (the overall report
    /// becomes `Degraded` and a `ComponentDegraded` alert goes to the alert sinks) and healthy
    /// again after the next successful run.
    #[cfg(feature = "health")]
    pub fn report_health(mut self, health: &keel_health::HealthHandle) -> Self {
        self.health = Some(health.clone());
        self
    }

    fn effective_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "backup".to_owned())
        })
    }

    /// The first due time, as an offset from the start; `None` when a cron expression matches
    /// no later time.
    fn first_due(&self, wall_start: SystemTime) -> Option<Duration> {
        match &self.cadence {
            Cadence::Every(_) => Some(Duration::ZERO),
            Cadence::Cron(cron) => cron.next_after(wall_start)?.duration_since(wall_start).ok(),
        }
    }

    /// After a run that was due at `due` ended at `now` (offsets from the start): the next due
    /// time (at or after `now`) and how many due times fell inside the run (skipped).
    fn next_due(
        &self,
        wall_start: SystemTime,
        due: Duration,
        now: Duration,
    ) -> Option<(Duration, u64)> {
        match &self.cadence {
            Cadence::Every(every) => {
                let period = every.as_nanos().max(1);
                let slot = due.as_nanos() / period;
                let next = now.as_nanos().div_ceil(period).max(slot + 1);
                let missed = u64::try_from(next - slot - 1).unwrap_or(u64::MAX);
                let offset = u64::try_from(next * period).ok()?;
                Some((Duration::from_nanos(offset), missed))
            }
            Cadence::Cron(cron) => {
                let mut next = cron.next_after(wall_start + due)?;
                let mut missed = 0u64;
                // A run that outlasts a million due times is not a schedule worth counting.
                while next < wall_start + now && missed < 1_000_000 {
                    missed += 1;
                    next = cron.next_after(next)?;
                }
                Some((next.duration_since(wall_start).ok()?, missed))
            }
        }
    }

    /// The retention applied after each successful run (default: keep only the newest good).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Stop after this many runs (default: run until `shutdown`).
    pub fn runs(mut self, runs: u64) -> Self {
        self.runs = Some(runs);
        self
    }

    /// A fresh directory name under the root: `backup-<UTC time>`, with a suffix if taken.
    fn next_dir(&self) -> PathBuf {
        let stamp = crate::backup::now()
            .replace([':', '-'], "")
            .split('.')
            .next()
            .unwrap_or_default()
            .trim_end_matches('Z')
            .to_owned();
        let base = format!("backup-{stamp}Z");
        let mut dir = self.root.join(&base);
        let mut n = 1;
        while dir.exists() || self.root.join(format!(".{}.partial", base)).exists() {
            n += 1;
            dir = self.root.join(format!("{base}-{n}"));
        }
        dir
    }

    /// Runs `job(dir)` on schedule until `shutdown` completes (or the run count is reached);
    /// each failure goes to `on_failure` (an alert) and the schedule goes on. Retention is
    /// applied after each successful run.
    pub async fn run<J, F, S, A>(
        self,
        mut job: J,
        mut on_failure: A,
        shutdown: S,
    ) -> Result<ScheduleStats, BackupError>
    where
        J: FnMut(PathBuf) -> F,
        F: Future<Output = Result<Manifest, BackupError>>,
        S: Future<Output = ()>,
        A: FnMut(&BackupError),
    {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| BackupError::io("creating the directory", &self.root, e))?;
        let _lock = RootLock::take(&self.root)?;
        let mut stats = ScheduleStats::default();
        let mut report = RunReporter::new(
            &self.effective_name(),
            #[cfg(feature = "health")]
            self.health.as_ref(),
        );
        tokio::pin!(shutdown);
        let origin = tokio::time::Instant::now();
        let wall_start = self.wall_start.unwrap_or_else(SystemTime::now);
        let mut due = self.first_due(wall_start);
        let mut runs = 0u64;
        while let Some(offset) = due {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(origin + offset) => {}
            }
            let started = tokio::time::Instant::now();
            let dir = self.next_dir();
            match job(dir.clone()).await {
                Ok(manifest) => {
                    stats.succeeded += 1;
                    stats.last_success = Some(manifest.finished_at.clone());
                    stats.last_duration = Some(started.elapsed());
                    stats.last_documents = manifest.documents();
                    tracing::info!(dir = %dir.display(), documents = manifest.documents(), "scheduled backup done");
                    // Re-read: a drill the job ran after the backup is recorded in the file.
                    let manifest = Manifest::read(&dir).unwrap_or(manifest);
                    report.succeeded(&manifest, started.elapsed());
                    for old in self.retention.prune(&list_backups(&self.root)) {
                        match std::fs::remove_dir_all(&old) {
                            Ok(()) => {
                                tracing::info!(dir = %old.display(), "backup pruned by retention");
                                stats.pruned.push(old);
                            }
                            Err(e) => {
                                tracing::warn!(dir = %old.display(), error = %e, "pruning a backup failed")
                            }
                        }
                    }
                }
                Err(error) => {
                    stats.failed += 1;
                    stats.last_error = Some(error.to_string());
                    tracing::error!(%error, "scheduled backup failed");
                    report.failed(&error, &crate::backup::now(), stats.last_success.as_deref());
                    on_failure(&error);
                }
            }
            runs += 1;
            if self.runs.is_some_and(|n| runs >= n) {
                break;
            }
            // The next due time after this run's end: the ones that fell inside it are skipped.
            let next = self.next_due(wall_start, offset, origin.elapsed());
            if let Some((_, missed)) = next
                && missed > 0
            {
                stats.skipped += missed;
                tracing::warn!(
                    missed,
                    "backup runs skipped: the previous run was still going"
                );
            }
            due = next.map(|(next, _)| next);
            if due.is_none() {
                tracing::warn!(
                    "the schedule's cron expression matches no later time: the scheduler stops"
                );
            }
        }
        Ok(stats)
    }
}
