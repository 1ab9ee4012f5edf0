//! When scheduled backups run: a fixed interval from the start, or a cron expression evaluated in
//! UTC (parsed and evaluated by the `croner` crate: POSIX/Vixie fields, ranges, steps, names,
//! `@daily`-style nicknames, an optional seconds field).

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::BackupError;

/// How often a [`Schedule`](crate::Schedule) runs.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// A run at once, then one every interval after the start.
    Every(Duration),
    /// A run at every time the expression matches (UTC), the first one after the start.
    Cron(Box<CronExpression>),
}

impl Cadence {
    /// A cadence from a cron expression such as `0 */6 * * *` (see [`CronExpression::parse`]).
    pub fn cron(expression: &str) -> Result<Self, BackupError> {
        CronExpression::parse(expression).map(|cron| Self::Cron(Box::new(cron)))
    }
}

/// A parsed cron expression, evaluated in UTC.
#[derive(Debug, Clone)]
pub struct CronExpression {
    text: String,
    cron: croner::Cron,
}

impl CronExpression {
    /// Parses five fields (`minute hour day-of-month month day-of-week`), an optional leading
    /// seconds field, or a nickname (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`).
    /// A bad expression is a [`BackupError::BadCron`] naming it and saying why.
    pub fn parse(expression: &str) -> Result<Self, BackupError> {
        let cron = croner::Cron::from_str(expression).map_err(|e| BackupError::BadCron {
            expression: expression.to_owned(),
            reason: e.to_string(),
        })?;
        // An expression that never matches (`0 0 30 2 *`, the 30th of February) would stall the
        // scheduler silently: refuse it now.
        let probe = Self {
            text: expression.to_owned(),
            cron,
        };
        if probe.next_after(SystemTime::now()).is_none() {
            return Err(BackupError::BadCron {
                expression: expression.to_owned(),
                reason: "it matches no time in the next years".into(),
            });
        }
        Ok(probe)
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time after `time` (exclusive) the expression matches, to the millisecond;
    /// `None` when there is none (the search gives up after a few years).
    pub fn next_after(&self, time: SystemTime) -> Option<SystemTime> {
        let millis = i64::try_from(time.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
        let start = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        let millis = u64::try_from(next.timestamp_millis()).ok()?;
        Some(UNIX_EPOCH + Duration::from_millis(millis))
    }
}

impl FromStr for CronExpression {
    type Err = BackupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        let ms = mongodb::bson::DateTime::parse_rfc3339_str(rfc3339)
            .unwrap()
            .timestamp_millis();
        UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap())
    }

    #[test]
    fn every_six_hours_matches_on_the_hour_in_utc() {
        let cron = CronExpression::parse("0 */6 * * *").unwrap();
        assert_eq!(
            cron.next_after(at("2026-12-02T03:50:00Z")),
            Some(at("2026-12-02T06:00:00Z"))
        );
        // Exclusive: a due time is not found again from itself.
        assert_eq!(
            cron.next_after(at("2026-12-02T06:00:00Z")),
            Some(at("2026-12-02T12:00:00Z"))
        );
        let daily = CronExpression::parse("@daily").unwrap();
        assert_eq!(
            daily.next_after(at("2026-12-31T23:59:59Z")),
            Some(at("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_are_typed_errors_naming_the_expression() {
        for bad in ["", "0 */6 * *", "61 * * * *", "0 0 30 2 *", "every day"] {
            let error = CronExpression::parse(bad).unwrap_err();
            assert!(
                matches!(error, BackupError::BadCron { .. }),
                "{bad}: {error}"
            );
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }
}
