//! `cargo xtask ci`: the same checks, in the same order, on a developer's machine and in CI.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use crate::invariants;

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
    for CargoStep { name, args, env } in CARGO_STEPS {
        step(name, || cargo(&root, args, env))?;
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

fn cargo(root: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
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
