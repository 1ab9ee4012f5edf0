//! The architecture invariants of `docs/architecture.md`, checked by reading every manifest.
//!
//! A wrong dependency edge, a crate missing from the code map, a crate without workspace lints
//! or README, or a source file without its `//!` purpose line fails `cargo test` and
//! `cargo xtask ci`.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use toml::{Table, Value};

/// Where each crate sits in the dependency order (docs/architecture.md, "Invariants").
/// A crate may depend only on crates of a lower tier, plus the listed exceptions.
const TIERS: &[(&str, u8)] = &[
    ("keel-core", 1),
    ("keel-settings", 1),
    ("keel-testkit", 1),
    ("keel-retry", 2),
    ("keel-breaker", 2),
    ("keel-pool-core", 3),
    ("keel-health", 4),
    ("keel-plain-tower", 4),
    // The loader over every layer crate's own settings types, so directly below the facade.
    ("keel-config", 5),
    ("mongokeel", 6),
    ("keel-change-streams", 7),
    ("keel-sync", 7),
    ("keel-backup", 7),
    ("keel-cli", 8),
    ("keel-integration", 8),
    ("xtask", 8),
];

/// Edges allowed within a tier, each with its reason in docs/architecture.md.
const SAME_TIER_EXCEPTIONS: &[(&str, &str)] = &[
    // Sync downloads server changes through a change-stream consumer.
    ("keel-sync", "keel-change-streams"),
];

/// Crates whose dependency on keel-core must stay optional (behind the `mongodb` feature), so
/// their generic middleware builds without the driver.
const OPTIONAL_CORE: &[&str] = &["keel-retry", "keel-breaker"];

/// Crates that must not depend on any other keel crate at all.
const STANDALONE: &[&str] = &["keel-testkit"];

/// One manifest, as the checks need it.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
    pub(crate) table: Table,
}

/// What the invariant check looked at.
pub(crate) struct Report {
    crates: usize,
    edges: usize,
    files: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "architecture invariants hold: {} crates, {} internal dependency edges, {} source files",
            self.crates, self.edges, self.files
        )
    }
}

/// Checks the whole workspace.
pub(crate) fn check_workspace() -> Result<Report, String> {
    let root = crate::ci::workspace_root();
    let manifests = load_manifests(&root)?;
    let mut problems = check_manifests(&manifests);
    let mut files = 0;
    for manifest in &manifests {
        if manifest.dir.starts_with(root.join("crates"))
            && !manifest.dir.join("README.md").is_file()
        {
            problems.push(format!("{}: has no README.md", manifest.name));
        }
        for file in rust_files(&manifest.dir) {
            files += 1;
            if let Some(problem) = check_purpose_line(&root, &file) {
                problems.push(problem);
            }
        }
    }
    if problems.is_empty() {
        Ok(Report {
            crates: manifests.len(),
            edges: internal_edges(&manifests).len(),
            files,
        })
    } else {
        Err(format!(
            "{} architecture invariant(s) broken (see docs/architecture.md):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        ))
    }
}

pub(crate) fn load_manifests(root: &Path) -> Result<Vec<Manifest>, String> {
    let mut dirs: Vec<PathBuf> = vec![root.join("xtask"), root.join("integration")];
    let crates = fs::read_dir(root.join("crates")).map_err(|e| format!("reading crates/: {e}"))?;
    for entry in crates.flatten() {
        dirs.push(entry.path());
    }
    let mut manifests = Vec::new();
    for dir in dirs {
        let path = dir.join("Cargo.toml");
        if !path.is_file() {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let table: Table = text
            .parse()
            .map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
        let name = table
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{}: no [package] name", path.display()))?
            .to_owned();
        manifests.push(Manifest { dir, name, table });
    }
    manifests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(manifests)
}

/// A dependency of one manifest on another keel crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edge {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) section: String,
    pub(crate) optional: bool,
}

fn dependency_sections(table: &Table) -> Vec<(String, &Table)> {
    let mut sections = Vec::new();
    for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = table.get(kind).and_then(Value::as_table) {
            sections.push((kind.to_owned(), deps));
        }
    }
    if let Some(targets) = table.get("target").and_then(Value::as_table) {
        for (target, spec) in targets {
            for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
                if let Some(deps) = spec.get(kind).and_then(Value::as_table) {
                    sections.push((format!("target.{target}.{kind}"), deps));
                }
            }
        }
    }
    sections
}

fn internal_edges(manifests: &[Manifest]) -> Vec<Edge> {
    let names: Vec<&str> = manifests.iter().map(|m| m.name.as_str()).collect();
    let known = |name: &str| names.contains(&name) || TIERS.iter().any(|(n, _)| *n == name);
    let mut edges = Vec::new();
    for manifest in manifests {
        for (section, deps) in dependency_sections(&manifest.table) {
            for (key, spec) in deps {
                // `package = "…"` renames a dependency; the real crate name is what counts.
                let to = spec
                    .get("package")
                    .and_then(Value::as_str)
                    .unwrap_or(key)
                    .to_owned();
                if !known(&to) {
                    continue;
                }
                let optional = spec
                    .get("optional")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                edges.push(Edge {
                    from: manifest.name.clone(),
                    to,
                    section: section.clone(),
                    optional,
                });
            }
        }
    }
    edges
}

fn tier(name: &str) -> Option<u8> {
    TIERS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Every rule that can be checked from the manifests alone.
pub(crate) fn check_manifests(manifests: &[Manifest]) -> Vec<String> {
    let mut problems = Vec::new();
    for manifest in manifests {
        if tier(&manifest.name).is_none() {
            problems.push(format!(
                "{}: not in the code map; add it to docs/architecture.md and to TIERS in \
                 xtask/src/invariants.rs",
                manifest.name
            ));
        }
        let lints = manifest
            .table
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(Value::as_bool);
        if lints != Some(true) {
            problems.push(format!(
                "{}: missing `[lints] workspace = true`",
                manifest.name
            ));
        }
    }
    for edge in internal_edges(manifests) {
        if let Some(problem) = check_edge(&edge) {
            problems.push(problem);
        }
    }
    problems
}

fn check_edge(edge: &Edge) -> Option<String> {
    let (from, to) = (edge.from.as_str(), edge.to.as_str());
    let describe = || format!("{from} -> {to} ({})", edge.section);
    if STANDALONE.contains(&from) {
        return Some(format!(
            "{}: {from} must depend on no other keel crate",
            describe()
        ));
    }
    let (Some(from_tier), Some(to_tier)) = (tier(from), tier(to)) else {
        return None;
    };
    let excepted = SAME_TIER_EXCEPTIONS.contains(&(from, to));
    if to_tier >= from_tier && !excepted {
        return Some(format!(
            "{}: a tier-{from_tier} crate may depend only on lower tiers, and {to} is tier {to_tier}",
            describe()
        ));
    }
    if OPTIONAL_CORE.contains(&from)
        && to == "keel-core"
        && edge.section == "dependencies"
        && !edge.optional
    {
        return Some(format!(
            "{}: must be `optional = true` (behind the `mongodb` feature)",
            describe()
        ));
    }
    None
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn check_purpose_line(root: &Path, file: &Path) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    let first = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    if first.starts_with("//!") {
        None
    } else {
        let shown = file.strip_prefix(root).unwrap_or(file);
        Some(format!(
            "{}: must start with a `//!` line saying what the file is for",
            shown.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, extra: &str) -> Manifest {
        let text = format!("[package]\nname = \"{name}\"\n[lints]\nworkspace = true\n{extra}");
        Manifest {
            dir: PathBuf::from(name),
            name: name.to_owned(),
            table: text.parse().unwrap(),
        }
    }

    #[test]
    fn the_workspace_satisfies_its_invariants() {
        let report = check_workspace().unwrap_or_else(|problems| panic!("{problems}"));
        assert!(report.crates >= 2);
    }

    #[test]
    fn downward_edge_is_allowed() {
        let pool = manifest(
            "keel-pool-core",
            "[dependencies]\nkeel-core = { workspace = true }",
        );
        assert!(check_manifests(&[pool]).is_empty());
    }

    #[test]
    fn upward_edge_is_refused() {
        let core = manifest(
            "keel-core",
            "[dependencies]\nkeel-pool-core = { workspace = true }",
        );
        let problems = check_manifests(&[core]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("keel-core -> keel-pool-core"));
    }

    #[test]
    fn sideways_edge_is_refused_even_as_dev_dependency() {
        let retry = manifest("keel-retry", "[dev-dependencies]\nkeel-breaker = \"0.1\"");
        assert_eq!(check_manifests(&[retry]).len(), 1);
    }

    #[test]
    fn renamed_dependency_is_still_checked() {
        let core = manifest(
            "keel-core",
            "[dependencies]\nhealth = { package = \"keel-health\", version = \"0.1\" }",
        );
        assert_eq!(check_manifests(&[core]).len(), 1);
    }

    #[test]
    fn middleware_must_keep_core_optional() {
        let required = manifest("keel-breaker", "[dependencies]\nkeel-core = \"0.1\"");
        assert!(check_manifests(&[required])[0].contains("optional"));
        let optional = manifest(
            "keel-breaker",
            "[dependencies]\nkeel-core = { version = \"0.1\", optional = true }",
        );
        assert!(check_manifests(&[optional]).is_empty());
    }

    #[test]
    fn layer_crates_may_not_depend_on_the_config_loader() {
        for layer in [
            "keel-retry",
            "keel-breaker",
            "keel-pool-core",
            "keel-health",
        ] {
            let crate_ = manifest(layer, "[dependencies]\nkeel-config = \"0.1\"");
            assert_eq!(check_manifests(&[crate_]).len(), 1, "{layer}");
        }
        let config = manifest(
            "keel-config",
            "[dependencies]\nkeel-health = \"0.1\"\nkeel-pool-core = \"0.1\"",
        );
        assert!(check_manifests(&[config]).is_empty());
    }

    #[test]
    fn testkit_stays_standalone() {
        let testkit = manifest("keel-testkit", "[dependencies]\nkeel-core = \"0.1\"");
        assert_eq!(check_manifests(&[testkit]).len(), 1);
    }

    #[test]
    fn unknown_crate_and_missing_lints_are_reported() {
        let stray = Manifest {
            dir: PathBuf::from("stray"),
            name: "keel-stray".to_owned(),
            table: "[package]\nname = \"keel-stray\"".parse().unwrap(),
        };
        let problems = check_manifests(&[stray]);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn file_without_purpose_line_is_reported() {
        let dir = std::env::temp_dir().join(format!("keel-xtask-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("no_purpose.rs");
        fs::write(&file, "fn main() {}\n").unwrap();
        assert!(check_purpose_line(&dir, &file).is_some());
        fs::write(&file, "\n//! Purpose.\nfn main() {}\n").unwrap();
        assert!(check_purpose_line(&dir, &file).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }
}
