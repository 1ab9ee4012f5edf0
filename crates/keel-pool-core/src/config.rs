//! [`PoolSettings`]: pool sizes and the bounds on requests waiting for a connection, as a
//! service configures them (a TOML section, environment variables), with Keel's defaults and
//! their reasons, validated here once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::CheckoutLimitLayer;

/// How many connections Keel keeps and how many requests may wait for one. The driver applies
/// the first four (`maxPoolSize`, `minPoolSize`, `maxConnecting`, `maxIdleTimeMS`); this crate
/// applies `max_waiting` ([`CheckoutLimitLayer`]) and `reconnect_queue`
/// ([`ManagedSettings::reconnect_queue`](crate::ManagedSettings::reconnect_queue)).
///
/// ```
/// use keel_pool_core::PoolSettings;
/// let pool: PoolSettings = toml::from_str("max_size = 20\nmax_idle = \"30s\"").unwrap();
/// assert_eq!(pool.max_size, 20);
/// assert!(pool.problems().is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Most connections per server (driver `maxPoolSize`). Zero is rejected: the driver would
    /// read it as "unbounded".
    pub max_size: u32,
    /// Connections kept open even when idle (driver `minPoolSize`); at most `max_size`.
    pub min_size: u32,
    /// Connections being established at once (driver `maxConnecting`); bounds the connection
    /// storm after a failover.
    pub max_connecting: u32,
    /// Idle time after which a pooled connection is closed (driver `maxIdleTimeMS`).
    #[serde(with = "humantime_serde")]
    pub max_idle: Duration,
    /// Checkout wait limit: how many requests may wait for a connection at once; the next one
    /// fails fast as overloaded. How *long* one may wait is given to
    /// [`PoolSettings::checkout_limit`].
    pub max_waiting: u32,
    /// How many requests may queue while the client reconnects; beyond it they fail fast.
    pub reconnect_queue: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 100,
            min_size: 0,
            max_connecting: 2,
            max_idle: Duration::from_secs(180),
            max_waiting: 500,
            reconnect_queue: 1000,
        }
    }
}

pub use keel_settings::SettingError;

impl PoolSettings {
    /// Every field, in the order listings show them, with why its default is what it is.
    pub const REASONS: &'static [(&'static str, &'static str)] = &[
        (
            "max_size",
            "the driver's default; a bigger pool only moves the queue onto the server",
        ),
        (
            "min_size",
            "the driver's default: hold no connections nobody asked for",
        ),
        (
            "max_connecting",
            "the driver's default: limits the connection storm after a failover",
        ),
        (
            "max_idle",
            "below the 4-minute idle timeout of common cloud load balancers and NATs, which drop idle connections silently",
        ),
        (
            "max_waiting",
            "five waiters per connection; more only adds latency, so the next request fails fast as overloaded",
        ),
        (
            "reconnect_queue",
            "bounds memory while the cluster is unreachable; later requests fail fast",
        ),
    ];

    /// Every problem with these settings, in field order; empty when they can work.
    ///
    /// ```
    /// let mut pool = keel_pool_core::PoolSettings::default();
    /// pool.max_connecting = 0;
    /// assert_eq!(pool.problems()[0].field, "max_connecting");
    /// ```
    pub fn problems(&self) -> Vec<SettingError> {
        let mut problems = Vec::new();
        if self.max_size == 0 {
            problems.push(SettingError::new(
                "max_size",
                "0",
                "zero would make the driver's pool unbounded",
                "set a bound such as 100",
            ));
        } else if self.min_size > self.max_size {
            problems.push(SettingError::new(
                "min_size",
                self.min_size.to_string(),
                format!("larger than pool.max_size ({})", self.max_size),
                format!(
                    "lower pool.min_size to at most {}, or raise pool.max_size",
                    self.max_size
                ),
            ));
        }
        if self.max_connecting == 0 {
            problems.push(SettingError::new(
                "max_connecting",
                "0",
                "zero would never open a connection",
                "set it to 2, the driver's default",
            ));
        }
        if self.max_idle.is_zero() {
            problems.push(SettingError::new(
                "max_idle",
                "0s",
                "zero means idle connections are never closed",
                "set a positive duration such as \"3m\"",
            ));
        }
        problems
    }

    /// The checkout limit these settings imply: as many operations at once as the pool holds
    /// (`max_size`), at most `max_waiting` waiting, each for at most `wait`.
    ///
    /// ```
    /// let limit = keel_pool_core::PoolSettings::default().checkout_limit(std::time::Duration::from_secs(5));
    /// # let _ = limit;
    /// ```
    pub fn checkout_limit(&self, wait: Duration) -> CheckoutLimitLayer {
        let size = usize::try_from(self.max_size).unwrap_or(usize::MAX);
        let waiting = usize::try_from(self.max_waiting).unwrap_or(usize::MAX);
        CheckoutLimitLayer::new(size, wait).with_max_waiting(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_field_has_a_reason() {
        let pool = PoolSettings::default();
        assert!(pool.problems().is_empty());
        let table = toml::Table::try_from(&pool).unwrap();
        let mut fields: Vec<_> = table.keys().map(String::as_str).collect();
        let mut reasons: Vec<_> = PoolSettings::REASONS.iter().map(|(f, _)| *f).collect();
        fields.sort_unstable();
        reasons.sort_unstable();
        assert_eq!(fields, reasons);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let pool = PoolSettings {
            min_size: 500,
            max_connecting: 0,
            max_idle: Duration::ZERO,
            ..PoolSettings::default()
        };
        let fields: Vec<_> = pool.problems().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["min_size", "max_connecting", "max_idle"]);
        let zero = PoolSettings {
            max_size: 0,
            ..PoolSettings::default()
        };
        assert!(zero.problems()[0].problem.contains("unbounded"));
    }
}
