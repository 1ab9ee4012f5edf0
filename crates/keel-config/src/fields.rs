//! The one table of settings: path in files, environment variable, secrecy, and how to read
//! and show each value. Files, env, overrides, `explain` and the docs are all driven from it,
//! so names cannot drift apart.

use crate::KeelConfig;
use crate::value::{FieldValue, Problem};

/// How much of a value may be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sensitivity {
    /// Shown as is.
    Plain,
    /// A connection string: shown with its credentials hidden.
    Uri,
    /// Never shown.
    Secret,
}

/// One setting Keel understands.
pub struct Field {
    path: &'static str,
    env: &'static str,
    sensitivity: Sensitivity,
    pub(crate) get: fn(&KeelConfig) -> String,
    pub(crate) set: fn(&mut KeelConfig, &str) -> Result<(), Problem>,
}

impl Field {
    /// The dotted path used in TOML files and overrides, such as `pool.max_size`.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// The environment variable, such as `KEEL_POOL_MAX_SIZE`.
    pub fn env(&self) -> &'static str {
        self.env
    }

    /// Whether the value (or, for the connection string, its credentials) is hidden in output.
    pub fn is_secret(&self) -> bool {
        self.sensitivity != Sensitivity::Plain
    }

    /// A raw text value as safe to show in an error.
    pub(crate) fn shown(&self, raw: &str) -> String {
        match self.sensitivity {
            Sensitivity::Plain => raw.to_owned(),
            Sensitivity::Uri => crate::uri::redact_connection_string(raw),
            Sensitivity::Secret => keel_core::redact::REDACTED.to_owned(),
        }
    }
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field")
            .field("path", &self.path)
            .field("env", &self.env)
            .field("secret", &self.is_secret())
            .finish()
    }
}

macro_rules! field {
    ($path:literal, $env:literal, $sensitivity:ident, $($member:ident).+) => {
        Field {
            path: $path,
            env: $env,
            sensitivity: Sensitivity::$sensitivity,
            get: |config| FieldValue::render(&config.$($member).+),
            set: |config, text| {
                config.$($member).+ = FieldValue::parse(text)?;
                Ok(())
            },
        }
    };
}

/// Every setting, in the order `explain` shows them.
static FIELDS: &[Field] = &[
    field!("profile", "KEEL_PROFILE", Plain, profile),
    field!("preset", "KEEL_PRESET", Plain, preset),
    field!("uri", "KEEL_URI", Uri, uri),
    field!("app_name", "KEEL_APP_NAME", Plain, app_name),
    field!("username", "KEEL_USERNAME", Plain, username),
    field!("password", "KEEL_PASSWORD", Secret, password),
    field!("lazy_connect", "KEEL_LAZY_CONNECT", Plain, lazy_connect),
    field!("heartbeat", "KEEL_HEARTBEAT", Plain, heartbeat),
    field!("compressors", "KEEL_COMPRESSORS", Plain, compressors),
    field!("pool.max_size", "KEEL_POOL_MAX_SIZE", Plain, pool.max_size),
    field!("pool.min_size", "KEEL_POOL_MIN_SIZE", Plain, pool.min_size),
    field!(
        "pool.max_connecting",
        "KEEL_POOL_MAX_CONNECTING",
        Plain,
        pool.max_connecting
    ),
    field!("pool.max_idle", "KEEL_POOL_MAX_IDLE", Plain, pool.max_idle),
    field!(
        "pool.max_waiting",
        "KEEL_POOL_MAX_WAITING",
        Plain,
        pool.max_waiting
    ),
    field!(
        "pool.reconnect_queue",
        "KEEL_POOL_RECONNECT_QUEUE",
        Plain,
        pool.reconnect_queue
    ),
    field!(
        "timeouts.connect",
        "KEEL_TIMEOUT_CONNECT",
        Plain,
        timeouts.connect
    ),
    field!(
        "timeouts.server_selection",
        "KEEL_TIMEOUT_SERVER_SELECTION",
        Plain,
        timeouts.server_selection
    ),
    field!(
        "timeouts.attempt",
        "KEEL_TIMEOUT_ATTEMPT",
        Plain,
        timeouts.attempt
    ),
    field!(
        "timeouts.checkout_wait",
        "KEEL_TIMEOUT_CHECKOUT_WAIT",
        Plain,
        timeouts.checkout_wait
    ),
    field!(
        "timeouts.deadline",
        "KEEL_TIMEOUT_DEADLINE",
        Plain,
        timeouts.deadline
    ),
    field!("tls.mode", "KEEL_TLS_MODE", Plain, tls.mode),
    field!("tls.ca_file", "KEEL_TLS_CA_FILE", Plain, tls.ca_file),
    field!(
        "tls.cert_key_file",
        "KEEL_TLS_CERT_KEY_FILE",
        Plain,
        tls.cert_key_file
    ),
    field!(
        "tls.allow_invalid_certificates",
        "KEEL_TLS_ALLOW_INVALID_CERTIFICATES",
        Plain,
        tls.allow_invalid_certificates
    ),
    field!(
        "tls.allow_invalid_hostnames",
        "KEEL_TLS_ALLOW_INVALID_HOSTNAMES",
        Plain,
        tls.allow_invalid_hostnames
    ),
    field!("read_concern", "KEEL_READ_CONCERN", Plain, read_concern),
    field!(
        "write_concern.w",
        "KEEL_WRITE_CONCERN_W",
        Plain,
        write_concern.w
    ),
    field!(
        "write_concern.journal",
        "KEEL_WRITE_CONCERN_JOURNAL",
        Plain,
        write_concern.journal
    ),
    field!(
        "retry.max_attempts",
        "KEEL_RETRY_MAX_ATTEMPTS",
        Plain,
        retry.max_attempts
    ),
    field!(
        "retry.initial_backoff",
        "KEEL_RETRY_INITIAL_BACKOFF",
        Plain,
        retry.initial_backoff
    ),
    field!(
        "retry.max_backoff",
        "KEEL_RETRY_MAX_BACKOFF",
        Plain,
        retry.max_backoff
    ),
    field!("retry.jitter", "KEEL_RETRY_JITTER", Plain, retry.jitter),
    field!(
        "retry.budget_ratio",
        "KEEL_RETRY_BUDGET_RATIO",
        Plain,
        retry.budget_ratio
    ),
    field!(
        "retry.min_retries_per_second",
        "KEEL_RETRY_MIN_RETRIES_PER_SECOND",
        Plain,
        retry.min_retries_per_second
    ),
    field!(
        "breaker.failure_rate_threshold",
        "KEEL_BREAKER_FAILURE_RATE_THRESHOLD",
        Plain,
        breaker.failure_rate_threshold
    ),
    field!(
        "breaker.window_size",
        "KEEL_BREAKER_WINDOW_SIZE",
        Plain,
        breaker.window_size
    ),
    field!(
        "breaker.minimum_calls",
        "KEEL_BREAKER_MINIMUM_CALLS",
        Plain,
        breaker.minimum_calls
    ),
    field!(
        "breaker.slow_call_threshold",
        "KEEL_BREAKER_SLOW_CALL_THRESHOLD",
        Plain,
        breaker.slow_call_threshold
    ),
    field!(
        "breaker.slow_call_rate_threshold",
        "KEEL_BREAKER_SLOW_CALL_RATE_THRESHOLD",
        Plain,
        breaker.slow_call_rate_threshold
    ),
    field!(
        "breaker.consecutive_failures",
        "KEEL_BREAKER_CONSECUTIVE_FAILURES",
        Plain,
        breaker.consecutive_failures
    ),
    field!(
        "breaker.open_wait",
        "KEEL_BREAKER_OPEN_WAIT",
        Plain,
        breaker.open_wait
    ),
    field!(
        "breaker.max_open_wait",
        "KEEL_BREAKER_MAX_OPEN_WAIT",
        Plain,
        breaker.max_open_wait
    ),
    field!(
        "breaker.half_open_probes",
        "KEEL_BREAKER_HALF_OPEN_PROBES",
        Plain,
        breaker.half_open_probes
    ),
];

/// Every setting Keel understands, in `explain` order: its file path, environment variable
/// and whether it is secret.
///
/// ```
/// let pool = keel_config::fields().iter().find(|f| f.path() == "pool.max_size").unwrap();
/// assert_eq!(pool.env(), "KEEL_POOL_MAX_SIZE");
/// assert!(keel_config::fields().iter().any(|f| f.env() == "KEEL_PASSWORD" && f.is_secret()));
/// ```
pub fn fields() -> &'static [Field] {
    FIELDS
}

pub(crate) fn index_of_path(path: &str) -> Option<usize> {
    FIELDS.iter().position(|field| field.path == path)
}

pub(crate) fn index_of_env(name: &str) -> Option<usize> {
    FIELDS.iter().position(|field| field.env == name)
}

/// Whether `path` is a section (`pool`, `tls`…) holding fields.
pub(crate) fn is_section(path: &str) -> bool {
    FIELDS.iter().any(|field| {
        field
            .path
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn paths_and_env_names_are_unique_and_well_formed() {
        let mut paths = HashSet::new();
        let mut envs = HashSet::new();
        for field in FIELDS {
            assert!(paths.insert(field.path), "duplicate path {}", field.path);
            assert!(envs.insert(field.env), "duplicate env {}", field.env);
            assert!(field.env.starts_with("KEEL_"), "{}", field.env);
            assert_eq!(field.env, field.env.to_ascii_uppercase());
        }
    }

    #[test]
    fn the_readme_lists_every_environment_variable() {
        let readme = include_str!("../README.md");
        for field in FIELDS {
            assert!(
                readme.contains(&format!("| `{}` | `{}`", field.path, field.env)),
                "{}",
                field.env
            );
        }
    }

    #[test]
    fn only_the_connection_string_and_password_are_secret() {
        let secret: Vec<_> = FIELDS
            .iter()
            .filter(|f| f.is_secret())
            .map(|f| f.path)
            .collect();
        assert_eq!(secret, ["uri", "password"]);
    }
}
