//! `cargo xtask ci`: the same checks, in the same order, on a developer's machine and in CI.
//! It first installs the system packages the tests need (Debian's `chromium` for keel-health's
//! browser test), so the README's command passes on a fresh machine by itself.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use crate::{features, invariants};

/// One cargo invocation: its name in the log, its arguments, extra environment.
struct CargoStep {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const CARGO_STEPS: [CargoStep; 4] = [
    CargoStep {
        name: "format",
        args: &["fmt", "--all", "--check"],
        env: &[],
    },
    CargoStep {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
    },
    CargoStep {
        name: "tests",
        args: &["test", "--workspace", "--all-features", "--locked"],
        env: &[],
    },
    CargoStep {
        name: "docs",
        args: &[
            "doc",
            "--workspace",
            "--all-features",
            "--no-deps",
            "--locked",
        ],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
];

/// Runs every CI step, stopping at the first failure.
pub(crate) fn run() -> Result<(), String> {
    let root = workspace_root();
    let started = Instant::now();
    step("system packages (chromium)", ensure_chromium)?;
    step(
        "PyMongo's bson (backup files read by another decoder)",
        ensure_pymongo,
    )?;
    for CargoStep { name, args, env } in CARGO_STEPS {
        step(name, || cargo(&root, args, env))?;
        if name == "clippy" {
            // Right after the workspace clippy, whose dependency builds it reuses.
            step("every feature combination", features::run)?;
        }
    }
    step("architecture invariants", || {
        invariants::check_workspace().map(|report| println!("{report}"))
    })?;
    step("cargo-deny (licenses, bans, sources)", || deny(&root))?;
    println!(
        "xtask ci: all checks passed in {}",
        minutes(started.elapsed())
    );
    Ok(())
}

fn step(name: &str, run: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    println!("==> {name}");
    let started = Instant::now();
    run().map_err(|message| format!("step `{name}` failed: {message}"))?;
    println!("<== {name} ok ({})", minutes(started.elapsed()));
    Ok(())
}

fn minutes(elapsed: Duration) -> String {
    format!("{}m{:02}s", elapsed.as_secs() / 60, elapsed.as_secs() % 60)
}

pub(crate) fn cargo(root: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root)
        .status()
        .map_err(|e| format!("could not start `{cargo}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` exited with {status}", args.join(" ")))
    }
}

/// The Debian package keel-health's dashboard test drives (it runs `/usr/bin/chromium`).
const CHROMIUM: &str = "chromium";

/// Installs Debian's `chromium` when no `chromium` is on `PATH`: `apt-get update`, then
/// `apt-get install -y chromium`, through `sudo` when not root (what `.ci/run` did before).
fn ensure_chromium() -> Result<(), String> {
    if on_path(CHROMIUM) {
        println!("{CHROMIUM} is installed");
        return Ok(());
    }
    println!("installing Debian's {CHROMIUM} for the dashboard browser test");
    for command in install_commands(is_root()) {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| "an empty install command".to_owned())?;
        let status = Command::new(program)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("could not start `{program}`: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`{}` exited with {status}; install Debian's {CHROMIUM} package by hand \
                 (`apt-get install -y {CHROMIUM}`) and run `cargo xtask ci` again",
                command.join(" ")
            ));
        }
    }
    Ok(())
}

/// keel-backup's test reads the backup files with PyMongo's `bson.decode_file_iter`, an
/// independent BSON decoder. Installs PyMongo from PyPI for `python3` when `import bson` fails,
/// falling back to Debian's `python3-pymongo` (a Debian Python refuses pip installs). Never
/// fails the run: without it that one test says it skipped.
fn ensure_pymongo() -> Result<(), String> {
    let has_bson = || {
        Command::new("python3")
            .args(["-c", "import bson; bson.decode_file_iter"])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if has_bson() {
        println!("PyMongo's bson is installed");
        return Ok(());
    }
    let quiet = |command: &mut Command| command.output().is_ok_and(|out| out.status.success());
    let pip = quiet(Command::new("python3").args(["-m", "pip", "install", "--quiet", "pymongo"]));
    if !pip {
        let mut apt = install_commands(is_root());
        if let Some(install) = apt.last_mut() {
            install.pop();
            install.push("python3-pymongo".into());
        }
        for command in apt {
            if let Some((program, args)) = command.split_first() {
                quiet(
                    Command::new(program)
                        .args(args)
                        .env("DEBIAN_FRONTEND", "noninteractive"),
                );
            }
        }
    }
    if has_bson() {
        println!("installed PyMongo for the backup decoder test");
    } else {
        println!("PyMongo could not be installed: the backup decoder test will say it skipped");
    }
    Ok(())
}

/// The commands that install chromium; `sudo` (passing `DEBIAN_FRONTEND` on, which sudo
/// would otherwise drop) when not root.
fn install_commands(root: bool) -> Vec<Vec<String>> {
    let steps: [&[&str]; 2] = [
        &["apt-get", "update", "-qq"],
        &["apt-get", "install", "-y", "-qq", CHROMIUM],
    ];
    steps
        .iter()
        .map(|args| {
            let mut command: Vec<String> = Vec::new();
            if !root {
                command.push("sudo".into());
                command.push("DEBIAN_FRONTEND=noninteractive".into());
            }
            command.extend(args.iter().map(|a| (*a).to_owned()));
            command
        })
        .collect()
}

/// Whether an executable file named `name` is in a `PATH` directory (`command -v`).
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(name);
            std::fs::metadata(&candidate).is_ok_and(|m| m.is_file() && is_executable(&m))
        })
    })
}

#[cfg(unix)]
fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    true
}

/// Whether this process runs as root (`id -u` prints 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// cargo-deny is optional on a developer machine: when it is missing, or when its advisory
/// database cannot be fetched (no network), say so and go on rather than fail the run.
fn deny(root: &PathBuf) -> Result<(), String> {
    let installed = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        println!(
            "cargo-deny is not installed: skipping (install it with `cargo install cargo-deny`)"
        );
        return Ok(());
    }
    let status = Command::new("cargo")
        .args(["deny", "--offline", "check", "licenses", "bans", "sources"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("could not start cargo-deny: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo deny exited with {status}"))
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    // xtask lives one level below the workspace root. `cargo run` sets the variable at run
    // time too; prefer that, because a binary built from another checkout into a shared target
    // directory would otherwise check that checkout.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chromium_is_installed_with_apt_get_and_sudo_only_when_not_root() {
        let root = install_commands(true);
        assert_eq!(root[0], ["apt-get", "update", "-qq"]);
        assert_eq!(root[1], ["apt-get", "install", "-y", "-qq", "chromium"]);
        let user = install_commands(false);
        assert!(
            user.iter()
                .all(|c| c[0] == "sudo" && c[1] == "DEBIAN_FRONTEND=noninteractive")
        );
        assert_eq!(user[1][2..], root[1][..]);
    }

    #[test]
    fn on_path_finds_executables_only() {
        assert!(on_path("sh"), "every unix machine has sh on PATH");
        assert!(!on_path("surely-no-such-program-keel"));
    }
}
