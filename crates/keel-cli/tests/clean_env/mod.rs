//! The built `keel` binary run as a user would, with none of the caller's `KEEL_*` variables,
//! so a test sees only what it sets: shared by the cli, demo and doctor tests.
//!
//! (`tests/support` clears only `KEEL_URI` and reads output lossily, as the backup tests want.)

#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Output};

/// `keel ARGS` with `env` as its only `KEEL_*` variables.
pub(crate) fn keel_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keel"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("KEEL_") {
            command.env_remove(name);
        }
    }
    command.args(args).envs(env.iter().copied());
    command
}

/// Runs `keel ARGS` to the end, with `env` as its only `KEEL_*` variables.
pub(crate) fn keel_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    keel_command(args, env).output().unwrap()
}

/// Runs `keel ARGS` to the end, with no `KEEL_*` variable.
pub(crate) fn keel(args: &[&str]) -> Output {
    keel_with_env(args, &[])
}

/// Output bytes as text (the binary writes UTF-8).
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Asserts that the run exited with `code` (showing its output otherwise); its stdout and
/// stderr as text.
pub(crate) fn exited(out: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Asserts that the run succeeded and wrote nothing to stderr; its stdout as text.
pub(crate) fn succeeded(out: &Output) -> String {
    let (stdout, stderr) = exited(out, 0);
    assert!(stderr.is_empty(), "{stderr}");
    stdout
}
