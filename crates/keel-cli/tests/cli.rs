//! Runs the built `keel` binary the way a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clean_env;

use clean_env::{keel_with_env, text};

const SECRET: &str = "S3cretPw";

#[test]
fn explain_on_a_fresh_machine_prints_defaults_and_sources() {
    let out = keel_with_env(&["config", "explain"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("SETTING"), "{stdout}");
    let uri = stdout.lines().find(|l| l.starts_with("uri ")).unwrap();
    assert!(
        uri.contains("mongodb://localhost:27017") && uri.contains("default"),
        "{uri}"
    );
    assert!(stdout.contains("note: TCP keepalive"));
    assert!(text(&out.stderr).is_empty());
}

#[test]
fn secret_in_keel_uri_is_never_printed() {
    let out = keel_with_env(
        &[
            "config",
            "explain",
            "--profile",
            "development",
            "--preset",
            "serverless",
        ],
        &[("KEEL_URI", "mongodb://user:S3cretPw@host/")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}{stderr}"
    );
    let uri = stdout.lines().find(|l| l.starts_with("uri ")).unwrap();
    assert!(
        uri.contains("mongodb://<redacted>@host/") && uri.contains("env"),
        "{uri}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("lazy_connect") && l.contains("true"))
    );
}

#[test]
fn secret_is_not_printed_when_the_configuration_is_bad_either() {
    let out = keel_with_env(
        &["config", "explain", "--uri", "mongodb//user:S3cretPw@host/"],
        &[("KEEL_PASSWORD", SECRET)],
    );
    assert!(!out.status.success());
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains(SECRET), "{all}");
}

#[test]
fn bad_input_exits_non_zero_with_one_clear_sentence() {
    let out = keel_with_env(&["config", "explain"], &[("KEEL_POOL_MIN_SIZE", "500")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: invalid configuration: pool.min_size = \"500\" (from KEEL_POOL_MIN_SIZE)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("fix:") && stderr.trim_end().ends_with('.'),
        "{stderr}"
    );
}

#[test]
fn explain_refuses_a_breaker_window_that_build_would_refuse() {
    let out = keel_with_env(
        &["config", "explain"],
        &[("KEEL_BREAKER_WINDOW_SIZE", "2000000")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: invalid configuration: breaker.window_size = \"2000000\" (from KEEL_BREAKER_WINDOW_SIZE)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("fix:"), "{stderr}");
}

#[test]
fn explain_shows_health_settings_and_their_sources() {
    let out = keel_with_env(&["config", "explain"], &[("KEEL_HEALTH_INTERVAL", "1s")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let row = |field: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(&format!("{field} ")))
            .map(|line| line.split_whitespace().take(3).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(row("health.interval"), ["health.interval", "1s", "env"]);
    assert_eq!(
        row("health.latency.raise_at"),
        ["health.latency.raise_at", "500ms", "default"]
    );
}

#[test]
fn a_file_and_a_uri_flag_are_layered() {
    let path = std::env::temp_dir().join(format!("keel-cli-test-{}.toml", std::process::id()));
    std::fs::write(&path, "[pool]\nmax_size = 33\n").unwrap();
    let out = keel_with_env(
        &[
            "config",
            "explain",
            "--file",
            path.to_str().unwrap(),
            "--uri",
            "mongodb://other:27017/",
        ],
        &[("KEEL_URI", "mongodb://ignored:27017/")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let pool = stdout
        .lines()
        .find(|l| l.starts_with("pool.max_size "))
        .unwrap();
    assert!(pool.contains("33") && pool.contains("file"), "{pool}");
    let uri = stdout.lines().find(|l| l.starts_with("uri ")).unwrap();
    assert!(
        uri.contains("mongodb://other:27017/") && uri.contains("override"),
        "{uri}"
    );
}

#[test]
fn missing_file_and_unknown_profile_fail_clearly() {
    let out = keel_with_env(
        &["config", "explain", "--file", "/nonexistent/keel.toml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read the configuration file"));

    let out = keel_with_env(&["config", "explain", "--profile", "prod"], &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: invalid value 'prod'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("development, testing, production"),
        "{stderr}"
    );
}

#[test]
fn help_lists_the_explain_options() {
    let out = keel_with_env(&["config", "explain", "--help"], &[]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for flag in ["--profile", "--preset", "--file", "--uri"] {
        assert!(stdout.contains(flag), "{stdout}");
    }
}
