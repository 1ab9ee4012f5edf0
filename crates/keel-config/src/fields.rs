//! The one table of settings: path in files, environment variable, secrecy, and how to read
//! and show each value. Files, env, overrides, `explain` and the docs are all driven from it,
//! so names cannot drift apart. The fields of the layer sections (`pool`, `retry`, `breaker`,
//! `health`) are listed from the layer crates' own types (see `sections`).

use std::sync::OnceLock;

use crate::KeelConfig;
#[cfg(feature = "health")]
use crate::sections::HEALTH;
use crate::sections::{BREAKER, Leaf, POOL, RETRY, Section};
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
#[derive(Clone, Copy)]
pub struct Field {
    path: &'static str,
    env: &'static str,
    sensitivity: Sensitivity,
    access: Access,
}

/// How a field is read and written.
#[derive(Clone, Copy)]
enum Access {
    /// A field of this crate's own sections.
    Own {
        get: fn(&KeelConfig) -> String,
        set: fn(&mut KeelConfig, &str) -> Result<(), Problem>,
    },
    /// A field of a layer crate's section, by its path inside the section.
    Layer {
        section: &'static Section,
        key: &'static str,
        leaf: Leaf,
        reason: &'static str,
    },
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

    /// The value in `config`, as `explain` shows it.
    pub(crate) fn get(&self, config: &KeelConfig) -> String {
        match &self.access {
            Access::Own { get, .. } => get(config),
            Access::Layer {
                section, key, leaf, ..
            } => section.get(config, key, *leaf),
        }
    }

    /// Sets the value in `config` from text.
    pub(crate) fn set(&self, config: &mut KeelConfig, text: &str) -> Result<(), Problem> {
        match &self.access {
            Access::Own { set, .. } => set(config, text),
            Access::Layer {
                section, key, leaf, ..
            } => section.set(config, key, *leaf, text),
        }
    }

    /// Why the base default is what it is, for a layer field (own fields keep theirs in
    /// `defaults::BASE`).
    pub(crate) fn layer_reason(&self) -> Option<&'static str> {
        match &self.access {
            Access::Own { .. } => None,
            Access::Layer { reason, .. } => Some(reason),
        }
    }

    /// A raw text value as safe to show in an error.
    pub(crate) fn shown(&self, raw: &str) -> String {
        match self.sensitivity {
            Sensitivity::Plain => raw.to_owned(),
            Sensitivity::Uri => keel_core::redact::redact_uri(raw),
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
            access: Access::Own {
                get: |config| FieldValue::render(&config.$($member).+),
                set: |config, text| {
                    config.$($member).+ = FieldValue::parse(text)?;
                    Ok(())
                },
            },
        }
    };
}

/// This crate's own settings before the pool section, in `explain` order.
static HEAD: &[Field] = &[
    field!("profile", "KEEL_PROFILE", Plain, profile),
    field!("preset", "KEEL_PRESET", Plain, preset),
    field!("uri", "KEEL_URI", Uri, uri),
    field!("app_name", "KEEL_APP_NAME", Plain, app_name),
    field!("username", "KEEL_USERNAME", Plain, username),
    field!("password", "KEEL_PASSWORD", Secret, password),
    field!("lazy_connect", "KEEL_LAZY_CONNECT", Plain, lazy_connect),
    field!("heartbeat", "KEEL_HEARTBEAT", Plain, heartbeat),
    field!("compressors", "KEEL_COMPRESSORS", Plain, compressors),
];

/// This crate's own settings between the pool and the retry sections, in `explain` order.
static MIDDLE: &[Field] = &[
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
    field!(
        "timeouts.outage_grace",
        "KEEL_TIMEOUT_OUTAGE_GRACE",
        Plain,
        timeouts.outage_grace
    ),
    field!(
        "timeouts.election_wait",
        "KEEL_TIMEOUT_ELECTION_WAIT",
        Plain,
        timeouts.election_wait
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
];

/// Every field of a layer section, in its crate's order; the variable is `KEEL_` and the path
/// in capitals (`breaker.open_wait` is `KEEL_BREAKER_OPEN_WAIT`).
fn layer_fields(section: &'static Section) -> impl Iterator<Item = Field> {
    section.reasons.iter().map(move |(key, reason)| {
        let path = format!("{}.{key}", section.name);
        let env = format!("KEEL_{}", path.replace('.', "_").to_ascii_uppercase());
        Field {
            // Built once per process (see `FIELDS`), so the table can hand out `'static` names.
            path: Box::leak(path.into_boxed_str()),
            env: Box::leak(env.into_boxed_str()),
            sensitivity: Sensitivity::Plain,
            access: Access::Layer {
                section,
                key,
                leaf: section.leaf(key),
                reason,
            },
        }
    })
}

/// Every setting, in the order `explain` shows them.
static FIELDS: OnceLock<Vec<Field>> = OnceLock::new();

fn all() -> &'static [Field] {
    FIELDS.get_or_init(|| {
        #[allow(unused_mut)] // extended only with the `health` feature
        let mut all: Vec<Field> = HEAD
            .iter()
            .copied()
            .chain(layer_fields(&POOL))
            .chain(MIDDLE.iter().copied())
            .chain(layer_fields(&RETRY))
            .chain(layer_fields(&BREAKER))
            .collect();
        #[cfg(feature = "health")]
        all.extend(layer_fields(&HEALTH));
        all
    })
}

/// Every setting Keel understands, in `explain` order: its file path, environment variable
/// and whether it is secret.
///
/// ```
/// let pool = keel_config::fields().iter().find(|f| f.path() == "pool.max_size").unwrap();
/// assert_eq!(pool.env(), "KEEL_POOL_MAX_SIZE");
/// assert!(keel_config::fields().iter().any(|f| f.env() == "KEEL_PASSWORD" && f.is_secret()));
/// ```
pub fn fields() -> &'static [Field] {
    all()
}

pub(crate) fn index_of_path(path: &str) -> Option<usize> {
    all().iter().position(|field| field.path == path)
}

pub(crate) fn index_of_env(name: &str) -> Option<usize> {
    all().iter().position(|field| field.env == name)
}

/// Whether `path` is a section (`pool`, `tls`…) holding fields.
pub(crate) fn is_section(path: &str) -> bool {
    all().iter().any(|field| {
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
        for field in all() {
            assert!(paths.insert(field.path), "duplicate path {}", field.path);
            assert!(envs.insert(field.env), "duplicate env {}", field.env);
            assert!(field.env.starts_with("KEEL_"), "{}", field.env);
            assert_eq!(field.env, field.env.to_ascii_uppercase());
        }
    }

    #[test]
    fn the_readme_lists_every_environment_variable() {
        let readme = include_str!("../README.md");
        for field in all() {
            assert!(
                readme.contains(&format!("| `{}` | `{}`", field.path, field.env)),
                "{}",
                field.env
            );
        }
    }

    #[test]
    fn only_the_connection_string_and_password_are_secret() {
        let secret: Vec<_> = all()
            .iter()
            .filter(|f| f.is_secret())
            .map(|f| f.path)
            .collect();
        assert_eq!(secret, ["uri", "password"]);
    }
}
