//! "Did you mean" suggestions for misspelt setting names.

use crate::error::ConfigError;
use crate::fields::fields;

/// Edit distance between two names (Levenshtein, case-insensitive).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_ascii_lowercase().chars().collect();
    let b: Vec<char> = b.to_ascii_lowercase().chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The closest candidate, if it is close enough to be a typo.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.len() / 4).clamp(2, 4);
    candidates
        .map(|candidate| (distance(name, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

fn fix(suggestion: Option<&str>, otherwise: &str) -> String {
    match suggestion {
        Some(name) => format!("did you mean {name}? ({otherwise})"),
        None => otherwise.to_owned(),
    }
}

/// An unknown dotted path (file key or override). Its value is never shown: a misspelt
/// `pasword` still holds a password.
pub(crate) fn unknown_path(path: &str) -> ConfigError {
    if cfg!(not(feature = "health")) && (path == "health" || path.starts_with("health.")) {
        return health_not_built(path);
    }
    let suggestion = closest(path, fields().iter().map(|f| f.path()));
    ConfigError::new(
        path,
        "unknown setting",
        fix(suggestion, "`keel config explain` lists every setting"),
    )
}

/// An unknown `KEEL_*` environment variable. Its value is never shown either.
pub(crate) fn unknown_env(name: &str) -> ConfigError {
    if cfg!(not(feature = "health")) && name.starts_with("KEEL_HEALTH_") {
        return health_not_built(name);
    }
    let suggestion = closest(name, fields().iter().map(|f| f.env()));
    ConfigError::new(
        name,
        "unknown KEEL_* environment variable",
        fix(
            suggestion,
            "unset it, or see the keel-config README for the list",
        ),
    )
}

/// A health setting given to a build without the health monitor.
fn health_not_built(name: &str) -> ConfigError {
    ConfigError::new(
        name,
        "health settings are read only when Keel is built with its health monitor",
        "enable mongokeel's `health` feature (keel-config's `health`), or remove the health settings",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "SAME"), 0);
    }

    #[test]
    fn typos_get_a_suggestion_and_nonsense_does_not() {
        assert_eq!(
            closest("pool.max_sise", fields().iter().map(|f| f.path())),
            Some("pool.max_size")
        );
        assert_eq!(
            closest("KEEL_TIMEOUTS_CONNECT", fields().iter().map(|f| f.env())),
            Some("KEEL_TIMEOUT_CONNECT")
        );
        assert_eq!(closest("zzzzzzzz", fields().iter().map(|f| f.path())), None);
    }
}
