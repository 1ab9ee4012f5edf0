//! [`Explanation`]: the effective value of every setting, where it came from and why.

use std::fmt;

use crate::config::KeelConfig;
use crate::fields::fields;
use crate::source::Source;

/// Facts about settings Keel does not control, shown under the table.
const NOTES: &[&str] = &[
    "TCP keepalive is not configurable: the mongodb 3.9 driver sets a 120s keepalive on every connection and exposes no option.",
    "Connection-string options Keel manages (maxPoolSize, connectTimeoutMS, appName, w, ...) show with source uri; a file, KEEL_* variable or override replaces them.",
    "lazy_connect, pool.max_waiting, pool.reconnect_queue, timeouts.attempt/checkout_wait/deadline/outage_grace/election_wait, retry.*, breaker.* and health.* are applied by Keel's layers, not by the driver.",
];

/// The effective configuration, one [`ExplainRow`] per setting, with secrets redacted.
///
/// `Display` prints an aligned table followed by notes.
///
/// ```
/// let config = keel_config::KeelConfig::development("mongodb://u:pw-123@localhost/")?;
/// let explanation = config.explain();
/// let row = explanation.row("pool.max_size").unwrap();
/// assert_eq!((row.value(), row.source().as_str()), ("10", "profile"));
/// assert!(!explanation.to_string().contains("pw-123"));
/// # Ok::<(), keel_config::ConfigErrors>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    rows: Vec<ExplainRow>,
}

/// One setting in an [`Explanation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainRow {
    field: &'static str,
    env: &'static str,
    value: String,
    source: Source,
    reason: Option<&'static str>,
}

impl ExplainRow {
    /// The dotted path, such as `pool.max_size`.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The environment variable that sets it.
    pub fn env(&self) -> &'static str {
        self.env
    }

    /// The effective value, redacted when secret.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Which layer gave the value.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Why the default is what it is, when the value is a default.
    pub fn reason(&self) -> Option<&'static str> {
        self.reason
    }
}

impl Explanation {
    /// Every row, in a stable order.
    pub fn rows(&self) -> &[ExplainRow] {
        &self.rows
    }

    /// The row of one setting.
    pub fn row(&self, field: &str) -> Option<&ExplainRow> {
        self.rows.iter().find(|row| row.field == field)
    }

    /// Facts about settings Keel cannot change (such as TCP keepalive).
    pub fn notes(&self) -> &'static [&'static str] {
        NOTES
    }
}

impl KeelConfig {
    /// The effective value of every setting and where it came from, secrets redacted.
    pub fn explain(&self) -> Explanation {
        let rows = fields()
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let value = field.get(self);
                let (source, reason) = match self.origin(index) {
                    Some(origin) if origin.shown == value => (origin.source, origin.reason),
                    Some(_) => (Source::Code, None),
                    None => (Source::Default, None),
                };
                ExplainRow {
                    field: field.path(),
                    env: field.env(),
                    value,
                    source,
                    reason,
                }
            })
            .collect();
        Explanation { rows }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |pick: fn(&ExplainRow) -> usize, title: &str| {
            self.rows
                .iter()
                .map(pick)
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let field_w = width(|r| r.field.len(), "SETTING");
        let value_w = width(|r| r.value.chars().count(), "VALUE");
        let source_w = width(|r| r.source.as_str().len(), "SOURCE");
        writeln!(
            f,
            "{:field_w$}  {:value_w$}  {:source_w$}  WHY",
            "SETTING", "VALUE", "SOURCE"
        )?;
        for row in &self.rows {
            let line = format!(
                "{:field_w$}  {:value_w$}  {:source_w$}  {}",
                row.field,
                row.value,
                row.source.as_str(),
                row.reason.unwrap_or(""),
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        writeln!(f)?;
        for note in NOTES {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}
