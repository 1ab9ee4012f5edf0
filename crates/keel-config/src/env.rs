//! Reading `KEEL_*` environment variables, from any iterator so tests never touch the process.

use crate::error::ConfigError;
use crate::fields::index_of_env;
use crate::file::Assignment;

/// `KEEL_*` variables that belong to other Keel tools and are not settings.
const NOT_SETTINGS: &[&str] = &[
    // The integration tests' real-deployment switch (docs/architecture.md §5).
    "KEEL_TEST_URI",
];

/// The settings among `vars`; other `KEEL_*` names are errors, non-`KEEL_` names are ignored.
pub(crate) fn read(vars: &[(String, String)], errors: &mut Vec<ConfigError>) -> Vec<Assignment> {
    let mut out = Vec::new();
    for (name, text) in vars {
        if !name.starts_with("KEEL_") || NOT_SETTINGS.contains(&name.as_str()) {
            continue;
        }
        match index_of_env(name) {
            Some(index) => out.push(Assignment {
                index,
                name: name.clone(),
                text: text.clone(),
            }),
            None => errors.push(crate::suggest::unknown_env(name)),
        }
    }
    out
}

/// The process's `KEEL_*` variables. A value that is not UTF-8 is kept lossily: validation then
/// reports it against its field.
pub(crate) fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            name.starts_with("KEEL_")
                .then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect()
}
