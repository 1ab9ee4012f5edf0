//! Which backups a retention policy keeps: the last N, plus the newest of each of the last D
//! days, W ISO weeks and M months (as PBM and restic's `forget --keep-*` count them: periods
//! that have a backup, newest first). Only good backups (complete and verified) count and may be
//! pruned; the newest good backup is never pruned, and neither is anything newer than it (a
//! newer one that is not good is left for an operator to look at).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::manifest::Manifest;
use crate::verify;

/// How many backups to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// The newest N good backups.
    pub keep_last: usize,
    /// The newest good backup of each of the last N days (UTC) that have one.
    pub daily: usize,
    /// The newest good backup of each of the last N ISO weeks (Monday to Sunday, UTC).
    pub weekly: usize,
    /// The newest good backup of each of the last N calendar months (UTC).
    pub monthly: usize,
}

/// One backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// Its directory.
    pub dir: PathBuf,
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_ms: i64,
    /// Complete and verified (`verify` passes).
    pub good: bool,
}

const DAY_MS: i64 = 86_400_000;

/// (year, month) of a day number since the epoch (Howard Hinnant's `civil_from_days`).
fn year_month(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

impl Retention {
    /// The backups to delete, oldest first.
    pub fn prune(&self, backups: &[BackupInfo]) -> Vec<PathBuf> {
        let mut good: Vec<&BackupInfo> = backups.iter().filter(|b| b.good).collect();
        good.sort_by_key(|b| std::cmp::Reverse(b.finished_ms));
        let Some(newest) = good.first() else {
            return Vec::new();
        };
        let mut keep: HashSet<&Path> = HashSet::new();
        keep.insert(&newest.dir);
        for b in good.iter().take(self.keep_last) {
            keep.insert(&b.dir);
        }
        let day = |b: &BackupInfo| b.finished_ms.div_euclid(DAY_MS);
        // 1970-01-01 was a Thursday: +3 makes weeks start on Monday.
        let week = |b: &BackupInfo| (day(b) + 3).div_euclid(7);
        let month = |b: &BackupInfo| {
            let (y, m) = year_month(day(b));
            y * 12 + m
        };
        for (count, period) in [
            (self.daily, &day as &dyn Fn(&BackupInfo) -> i64),
            (self.weekly, &week),
            (self.monthly, &month),
        ] {
            let mut seen = HashSet::new();
            for b in &good {
                if seen.len() >= count {
                    break;
                }
                // `good` is newest first, so the first of each period is its newest.
                if seen.insert(period(b)) {
                    keep.insert(&b.dir);
                }
            }
        }
        let mut prune: Vec<&BackupInfo> = good
            .iter()
            .filter(|b| !keep.contains(b.dir.as_path()) && b.finished_ms <= newest.finished_ms)
            .copied()
            .collect();
        prune.sort_by_key(|b| b.finished_ms);
        prune.into_iter().map(|b| b.dir.clone()).collect()
    }
}

/// Every backup directly under `root` (directories with a manifest), each verified. Partial
/// directories (`.name.partial`) and other files are left out.
pub fn list_backups(root: &Path) -> Vec<BackupInfo> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut backups = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let dir = entry.path();
        if !dir.is_dir() || entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(manifest) = Manifest::read(&dir) else {
            continue;
        };
        let finished_ms = mongodb::bson::DateTime::parse_rfc3339_str(&manifest.finished_at)
            .map(|d| d.timestamp_millis())
            .unwrap_or(0);
        let good = manifest.complete && verify(&dir).is_ok();
        backups.push(BackupInfo {
            dir,
            finished_ms,
            good,
        });
    }
    backups
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    /// A backup every 6 h for 70 days from 2026-01-01 (a Thursday), all good.
    fn every_six_hours() -> Vec<BackupInfo> {
        let start = mongodb::bson::DateTime::parse_rfc3339_str("2026-01-01T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        (0..70 * 4)
            .map(|i| BackupInfo {
                dir: PathBuf::from(format!("b{i:03}")),
                finished_ms: start + i * 6 * HOUR,
                good: true,
            })
            .collect()
    }

    fn kept(backups: &[BackupInfo], r: Retention) -> Vec<String> {
        let pruned: HashSet<PathBuf> = r.prune(backups).into_iter().collect();
        let mut kept: Vec<String> = backups
            .iter()
            .filter(|b| !pruned.contains(&b.dir))
            .map(|b| b.dir.display().to_string())
            .collect();
        kept.sort();
        kept
    }

    #[test]
    fn months_follow_the_calendar() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(31), (1970, 2));
        assert_eq!(year_month(59), (1970, 3));
        assert_eq!(year_month(20_454), (2026, 1)); // 2026-01-01
        assert_eq!(year_month(20_513), (2026, 3)); // 2026-03-01
    }

    #[test]
    fn last_n_daily_weekly_monthly() {
        let all = every_six_hours();
        // Only the newest.
        assert_eq!(kept(&all, Retention::default()), ["b279"]);
        assert_eq!(
            kept(
                &all,
                Retention {
                    keep_last: 3,
                    ..Default::default()
                }
            ),
            ["b277", "b278", "b279"]
        );
        // Daily: the last of each of the 3 newest days (b279 is day 69's 18:00 backup).
        assert_eq!(
            kept(
                &all,
                Retention {
                    daily: 3,
                    ..Default::default()
                }
            ),
            ["b271", "b275", "b279"]
        );
        // Weekly: day 69 is 2026-03-11, a Wednesday; the week before ended Sunday 2026-03-08
        // (day 66), whose last backup is b267; the one before ends on day 59 (b239).
        assert_eq!(
            kept(
                &all,
                Retention {
                    weekly: 3,
                    ..Default::default()
                }
            ),
            ["b239", "b267", "b279"]
        );
        // Monthly: March's newest, February's last (day 58, 2026-02-28: b235), January's last
        // (day 30: b123).
        assert_eq!(
            kept(
                &all,
                Retention {
                    monthly: 3,
                    ..Default::default()
                }
            ),
            ["b123", "b235", "b279"]
        );
        let combined = Retention {
            keep_last: 2,
            daily: 2,
            weekly: 2,
            monthly: 2,
        };
        assert_eq!(
            kept(&all, combined),
            ["b235", "b267", "b275", "b278", "b279"]
        );
    }

    #[test]
    fn the_newest_good_backup_is_never_pruned_nor_anything_not_good() {
        let mut all = every_six_hours();
        // The two newest are damaged: the newest good one is b277, and the damaged ones stay.
        all[279].good = false;
        all[278].good = false;
        let pruned = Retention::default().prune(&all);
        assert!(!pruned.contains(&PathBuf::from("b277")));
        assert!(!pruned.contains(&PathBuf::from("b278")));
        assert!(!pruned.contains(&PathBuf::from("b279")));
        assert_eq!(pruned.len(), 277);
        // Nothing good at all: nothing is pruned.
        for b in &mut all {
            b.good = false;
        }
        assert!(Retention::default().prune(&all).is_empty());
    }
}
