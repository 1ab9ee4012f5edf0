//! Running `keel` as a user would, against `KEEL_TEST_URI` or an in-process keel-testkit
//! server: shared by the backup and schedule tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use keel_testkit::TestServer;

/// Runs `keel ARGS` to the end (without `KEEL_URI` from the environment).
pub(crate) async fn keel(args: Vec<String>) -> Output {
    keel_with_env(args, Vec::new()).await
}

/// Runs `keel ARGS` with extra environment variables.
pub(crate) async fn keel_with_env(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(args)
            .env_remove("KEEL_URI")
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// Owned arguments.
pub(crate) fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Output bytes as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `keel ARGS`, asserts it succeeded and returns its stdout.
pub(crate) async fn keel_ok(items: &[&str]) -> String {
    let out = keel(args(items)).await;
    assert!(
        out.status.success(),
        "keel {}: {}",
        items.join(" "),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Where the commands run: `KEEL_TEST_URI` when set (the same commands against a real
/// deployment), else an in-process keel-testkit server.
pub(crate) struct Deployment {
    _server: Option<TestServer>,
    uri: String,
}

impl Deployment {
    pub(crate) async fn start() -> Self {
        match std::env::var("KEEL_TEST_URI") {
            Ok(uri) => Self { _server: None, uri },
            Err(_) => {
                let server = TestServer::start().await.unwrap();
                Self {
                    uri: server.uri(),
                    _server: Some(server),
                }
            }
        }
    }

    pub(crate) fn uri(&self) -> String {
        self.uri.clone()
    }
}

/// A database name of this run, so a real deployment's own databases are never touched.
pub(crate) fn db(name: &str) -> String {
    format!("kcli_{name}_{}", std::process::id())
}

/// A fresh scratch directory of this run.
pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
    let base = std::env::temp_dir().join(format!("keel-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    base
}
