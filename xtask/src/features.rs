//! Every feature combination of every workspace crate builds: the CI step `features`, also
//! `cargo xtask features`.
//!
//! For each crate with features: its default features, `--no-default-features`, each feature
//! alone and all of them (cargo-hack's `--each-feature`); for the crates in [`POWERSET`] also
//! every pair of their features (`--feature-powerset --depth 2`). A combination that selects
//! the same features as another (the default set spelled out, a crate's only feature alone and
//! all) is checked once. Crates without features build only one way, which the workspace
//! clippy step already covers.
//!
//! Pairs rather than the whole powerset: mongokeel's 32 subsets were half of this step's six
//! minutes on CI's two cores, and a warning that needs three features together to appear has
//! not happened here (the cfg gates name one feature each).
//!
//! A loop here rather than `cargo hack`: the combinations come from the manifests the invariant
//! check already reads, so CI installs and compiles nothing more (cargo-hack is about a minute
//! of compiling on CI's two cores), and the list of what is checked is printed from this file.
//! Each combination runs `cargo clippy -- -D warnings` on the crate's library and binaries:
//! the same cost as `cargo check`, and a warning that only appears in one combination (an
//! import used only under a feature) fails it too. Passing `-D warnings` to clippy, not in
//! `RUSTFLAGS`, keeps every dependency's build from the clippy step reusable.

use std::collections::BTreeSet;

use toml::Value;

use crate::invariants::{self, Manifest};

/// Crates whose every pair of features is checked, not just each feature alone: the facade,
/// whose features decide which layer crates are compiled in.
const POWERSET: &[&str] = &["mongokeel"];

/// The largest subsets of a [`POWERSET`] crate's features checked besides all of them.
const POWERSET_DEPTH: u32 = 2;

/// One way to build a crate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Combination {
    /// The crate's default features.
    Default,
    /// `--no-default-features` plus these features (none: the bare crate).
    Only(BTreeSet<String>),
}

impl Combination {
    /// The cargo arguments selecting it.
    fn args(&self) -> Vec<String> {
        match self {
            Combination::Default => Vec::new(),
            Combination::Only(features) if features.is_empty() => {
                vec!["--no-default-features".to_owned()]
            }
            Combination::Only(features) => vec![
                "--no-default-features".to_owned(),
                "--features".to_owned(),
                features.iter().cloned().collect::<Vec<_>>().join(","),
            ],
        }
    }
}

/// The features of a manifest a user can pick: the `[features]` names but `default`, and
/// optional dependencies no feature enables with `dep:` (cargo makes those features).
/// Features that only group others (`full = ["retry", "breaker", "health"]`) are left out of a
/// powerset: the subsets of what they group already cover them.
fn features(manifest: &Manifest, skip_groups: bool) -> BTreeSet<String> {
    let table = manifest.table.get("features").and_then(Value::as_table);
    let declared: BTreeSet<String> = table
        .map(|t| t.keys().filter(|k| *k != "default").cloned().collect())
        .unwrap_or_default();
    let entries = |name: &str| -> Vec<String> {
        table
            .and_then(|t| t.get(name))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut picked: BTreeSet<String> = declared
        .iter()
        .filter(|name| !(skip_groups && entries(name).iter().all(|e| declared.contains(e))))
        .cloned()
        .collect();
    let enabled_with_dep: BTreeSet<String> = declared
        .iter()
        .flat_map(|name| entries(name))
        .filter_map(|entry| entry.strip_prefix("dep:").map(str::to_owned))
        .collect();
    if let Some(deps) = manifest.table.get("dependencies").and_then(Value::as_table) {
        for (name, spec) in deps {
            let optional = spec
                .get("optional")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if optional && !enabled_with_dep.contains(name) {
                picked.insert(name.clone());
            }
        }
    }
    picked
}

/// Every combination checked for `manifest`; empty for a crate without features.
pub(crate) fn combinations(manifest: &Manifest) -> Vec<Combination> {
    let powerset = POWERSET.contains(&manifest.name.as_str());
    let all = features(manifest, false);
    if all.is_empty() {
        return Vec::new();
    }
    // The default set spelled out is the same build as `Default`: checked once.
    let default = default_features(manifest, &all).map_or(Combination::Default, Combination::Only);
    let mut found = BTreeSet::from([default, Combination::Only(BTreeSet::new())]);
    found.insert(Combination::Only(all.clone()));
    if powerset {
        let base: Vec<String> = features(manifest, true).into_iter().collect();
        for mask in (0..(1_u32 << base.len())).filter(|m| m.count_ones() <= POWERSET_DEPTH) {
            let subset = base
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, f)| f.clone())
                .collect();
            found.insert(Combination::Only(subset));
        }
    } else {
        for feature in &all {
            found.insert(Combination::Only(BTreeSet::from([feature.clone()])));
        }
    }
    found.into_iter().collect()
}

/// The `default` feature's entries when each is one of `features` (`None` when it enables
/// something else, such as a dependency's feature: then only `Default` selects exactly it).
fn default_features(manifest: &Manifest, features: &BTreeSet<String>) -> Option<BTreeSet<String>> {
    let entries = match manifest
        .table
        .get("features")
        .and_then(Value::as_table)
        .and_then(|t| t.get("default"))
    {
        None => return Some(BTreeSet::new()),
        Some(default) => default.as_array()?,
    };
    entries
        .iter()
        .map(|entry| {
            entry
                .as_str()
                .filter(|name| features.contains(*name))
                .map(str::to_owned)
        })
        .collect()
}

/// Checks every combination of every workspace crate, stopping at the first that fails.
pub(crate) fn run() -> Result<(), String> {
    let root = crate::ci::workspace_root();
    let manifests = invariants::load_manifests(&root)?;
    let mut checked = 0;
    for manifest in &manifests {
        for combination in combinations(manifest) {
            let selection = combination.args();
            println!(
                "--- {} {}",
                manifest.name,
                if selection.is_empty() {
                    "(default features)".to_owned()
                } else {
                    selection.join(" ")
                }
            );
            let mut args = vec![
                "clippy".to_owned(),
                "--locked".to_owned(),
                "--quiet".to_owned(),
                "-p".to_owned(),
                manifest.name.clone(),
            ];
            args.extend(selection);
            args.extend(["--".to_owned(), "-D".to_owned(), "warnings".to_owned()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::ci::cargo(&root, &args, &[])?;
            checked += 1;
        }
    }
    // A link that only resolves with some feature fails rustdoc in the others: the facade's
    // documentation with its default features, as docs.rs builds it.
    crate::ci::cargo(
        &root,
        &["doc", "--locked", "-p", "mongokeel", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    println!("{checked} feature combinations build, and mongokeel's default documentation");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn manifest(name: &str, text: &str) -> Manifest {
        Manifest {
            dir: PathBuf::from(name),
            name: name.to_owned(),
            table: text.parse().unwrap(),
        }
    }

    fn only(features: &[&str]) -> Combination {
        Combination::Only(features.iter().map(|f| (*f).to_owned()).collect())
    }

    #[test]
    fn each_feature_alone_none_all_and_default() {
        let health = manifest(
            "keel-health",
            r#"
            [features]
            default = ["http"]
            http = ["dep:axum"]
            otel = ["dep:opentelemetry"]
            [dependencies]
            axum = { version = "0.8", optional = true }
            opentelemetry = { version = "0.33", optional = true }
            "#,
        );
        // The default (`http`) is checked once, as `--features http`.
        assert_eq!(
            combinations(&health),
            [
                only(&[]),
                only(&["http"]),
                only(&["http", "otel"]),
                only(&["otel"]),
            ]
        );
        assert!(combinations(&manifest("keel-core", "[dependencies]\n")).is_empty());
    }

    #[test]
    fn the_facade_gets_every_pair_and_all_without_its_groups() {
        let facade = manifest(
            "mongokeel",
            r#"
            [features]
            default = ["retry"]
            retry = ["dep:keel-retry"]
            health = ["dep:keel-health"]
            otel = ["dep:opentelemetry"]
            full = ["retry", "health", "otel"]
            [dependencies]
            keel-retry = { path = "x", optional = true }
            keel-health = { path = "y", optional = true }
            opentelemetry = { path = "z", optional = true }
            "#,
        );
        let found = combinations(&facade);
        assert_eq!(
            found,
            [
                only(&[]),
                only(&["full", "health", "otel", "retry"]),
                only(&["health"]),
                only(&["health", "otel"]),
                only(&["health", "retry"]),
                only(&["otel"]),
                only(&["otel", "retry"]),
                only(&["retry"]),
            ]
        );
    }

    #[test]
    fn a_default_that_enables_a_dependency_feature_is_checked_as_the_default() {
        let cli = manifest(
            "keel-cli",
            r#"
            [features]
            default = ["keel-backup/s3"]
            s3 = ["keel-backup/s3"]
            "#,
        );
        assert!(combinations(&cli).contains(&Combination::Default));
        assert_eq!(combinations(&cli).len(), 3);
    }

    #[test]
    fn optional_dependencies_without_dep_are_features() {
        let implicit = manifest(
            "x",
            "[dependencies]\nserde = { version = \"1\", optional = true }\n",
        );
        assert!(combinations(&implicit).contains(&only(&["serde"])));
    }

    #[test]
    fn the_workspace_has_combinations_to_check() {
        let manifests = invariants::load_manifests(&crate::ci::workspace_root()).unwrap();
        let count: usize = manifests.iter().map(|m| combinations(m).len()).sum();
        assert!(count > 10, "{count}");
    }
}
