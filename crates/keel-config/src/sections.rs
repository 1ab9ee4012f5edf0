//! The layer crates' settings as sections of a [`KeelConfig`]: each is a serde type that owns
//! its fields, defaults, reasons and validation; this module reads and writes one field of it
//! as text, through serde, so a field added to a layer crate is loaded, explained and validated
//! here without a line of this crate changing.

use std::time::Duration;

use crate::KeelConfig;
use crate::duration::format_duration;
use crate::value::{FieldValue, NOT_SET, Problem};

/// One problem a layer crate found in its section: field (relative), value, problem, fix.
pub(crate) type SectionProblem = (&'static str, String, String, String);

/// One section of the configuration owned by a layer crate.
pub(crate) struct Section {
    /// The section's name in files (`breaker`), the prefix of its paths and variables.
    pub(crate) name: &'static str,
    /// Every field (relative dotted path) in listing order, with the reason for its default.
    pub(crate) reasons: &'static [(&'static str, &'static str)],
    /// The section's current values as a table.
    table: fn(&KeelConfig) -> toml::Table,
    /// Replaces the section from a table; the error is the layer crate's message.
    set_table: fn(&mut KeelConfig, toml::Table) -> Result<(), String>,
    /// The layer crate's validation.
    pub(crate) problems: fn(&KeelConfig) -> Vec<SectionProblem>,
}

macro_rules! section {
    ($name:literal, $member:ident, $ty:ty) => {
        Section {
            name: $name,
            reasons: <$ty>::REASONS,
            // A settings struct of plain fields always serializes; an empty table would only
            // show every field as not set.
            table: |config| toml::Table::try_from(&config.$member).unwrap_or_default(),
            set_table: |config, table| {
                config.$member = table
                    .try_into()
                    .map_err(|error: toml::de::Error| error.message().to_owned())?;
                Ok(())
            },
            problems: |config| {
                config
                    .$member
                    .problems()
                    .into_iter()
                    .map(|p| (p.field, p.value, p.problem, p.fix))
                    .collect()
            },
        }
    };
}

/// The layer sections, each with the `KeelConfig` member that holds it.
pub(crate) static POOL: Section = section!("pool", pool, keel_pool_core::PoolSettings);
pub(crate) static RETRY: Section = section!("retry", retry, keel_retry::RetrySettings);
pub(crate) static BREAKER: Section = section!("breaker", breaker, keel_breaker::BreakerSettings);
#[cfg(feature = "health")]
pub(crate) static HEALTH: Section = section!("health", health, keel_health::HealthConfig);

/// What kind of text a field takes, from its default value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leaf {
    Integer,
    Float,
    Bool,
    Duration,
    Text,
}

impl Section {
    /// The kind of `key`, judged from the default configuration's value.
    pub(crate) fn leaf(&self, key: &str) -> Leaf {
        let config = KeelConfig::blank();
        match lookup(&(self.table)(&config), key) {
            Some(toml::Value::Integer(_)) => Leaf::Integer,
            Some(toml::Value::Float(_)) => Leaf::Float,
            Some(toml::Value::Boolean(_)) => Leaf::Bool,
            Some(toml::Value::String(text)) if parse_written(text).is_some() => Leaf::Duration,
            _ => Leaf::Text,
        }
    }

    /// The value of `key`, as `explain` shows it.
    pub(crate) fn get(&self, config: &KeelConfig, key: &str, leaf: Leaf) -> String {
        match lookup(&(self.table)(config), key) {
            None => NOT_SET.to_owned(),
            Some(toml::Value::String(text)) if leaf == Leaf::Duration => {
                parse_written(text).map_or_else(|| text.clone(), |d| format_duration(d).to_string())
            }
            Some(toml::Value::String(text)) => text.clone(),
            Some(toml::Value::Integer(n)) => n.to_string(),
            Some(toml::Value::Float(n)) => n.to_string(),
            Some(other) => other.to_string(),
        }
    }

    /// Sets `key` from text as a file or variable gives it; the layer crate's type decides
    /// whether the value is well formed.
    pub(crate) fn set(
        &self,
        config: &mut KeelConfig,
        key: &str,
        leaf: Leaf,
        text: &str,
    ) -> Result<(), Problem> {
        let value = match leaf {
            Leaf::Integer => toml::Value::Integer(i64::from(u32::parse(text)?)),
            Leaf::Float => toml::Value::Float(f64::parse(text)?),
            Leaf::Bool => toml::Value::Boolean(bool::parse(text)?),
            Leaf::Duration => {
                toml::Value::String(format_duration(Duration::parse(text)?).to_string())
            }
            Leaf::Text => toml::Value::String(text.trim().to_owned()),
        };
        let mut table = (self.table)(config);
        insert(&mut table, key, value);
        (self.set_table)(config, table).map_err(|message| match message.split_once("; ") {
            Some((problem, fix)) => Problem::new(problem, fix),
            None => Problem::new(
                message,
                format!(
                    "write a value like the default, such as \"{}\"",
                    self.get(&KeelConfig::blank(), key, leaf)
                ),
            ),
        })
    }
}

/// A duration as the layer crates write it (`"100ms"`, `"1m"`).
fn parse_written(text: &str) -> Option<Duration> {
    humantime::parse_duration(text).ok()
}

fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    match key.split_once('.') {
        Some((head, rest)) => lookup(table.get(head)?.as_table()?, rest),
        None => table.get(key),
    }
}

fn insert(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        Some((head, rest)) => {
            let inner = table
                .entry(head)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = inner {
                insert(inner, rest, value);
            }
        }
        None => {
            table.insert(key.to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_and_written_as_text() {
        let mut config = KeelConfig::blank();
        assert_eq!(BREAKER.leaf("open_wait"), Leaf::Duration);
        assert_eq!(BREAKER.leaf("window_size"), Leaf::Integer);
        assert_eq!(RETRY.leaf("jitter"), Leaf::Text);
        BREAKER
            .set(&mut config, "open_wait", Leaf::Duration, "90s")
            .unwrap();
        assert_eq!(config.breaker.open_wait, Duration::from_secs(90));
        assert_eq!(BREAKER.get(&config, "open_wait", Leaf::Duration), "90s");
        let problem = RETRY
            .set(&mut config, "jitter", Leaf::Text, "random")
            .unwrap_err();
        assert_eq!(problem.problem, "unknown jitter strategy");
        assert!(problem.fix.contains("decorrelated"), "{}", problem.fix);
    }

    #[cfg(feature = "health")]
    #[test]
    fn nested_fields_are_read_and_written_as_text() {
        let mut config = KeelConfig::blank();
        assert_eq!(HEALTH.leaf("recovery.enabled"), Leaf::Bool);
        HEALTH
            .set(&mut config, "latency.raise_at", Leaf::Duration, "1500ms")
            .unwrap();
        assert_eq!(config.health.latency.raise_at, Duration::from_millis(1500));
        assert_eq!(
            HEALTH.get(&config, "latency.raise_at", Leaf::Duration),
            "1500ms"
        );
    }
}
