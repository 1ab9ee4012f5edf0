//! The server a bench runs against, chosen by environment variables:
//!
//! * default: the `keel-testkit` binary started as a child process on a free port, as users run
//!   MongoDB (never inside their application). The child is killed when the bench ends, also
//!   when it panics (`ChildServer`'s `Drop`).
//! * `KEEL_BENCH_URI=mongodb://…`: an existing deployment (a real `mongod`, say); the URI is
//!   never printed, it may hold credentials.
//! * `KEEL_BENCH_SERVER=in-process`: a `TestServer` on the bench's own runtime, so server,
//!   driver and Keel run on one thread and evict each other from the caches on every call: the
//!   cache-bound worst case, and its CPU figures include the server's work.
//!
//! Finding the binary: cargo does not build a dependency's binaries for a bench (artifact
//! dependencies are unstable, `-Z bindeps`), so the bench looks where
//! `cargo build --release -p keel-testkit --bin keel-testkit` puts it, next to the bench's own
//! executable (`target/release/keel-testkit`), and when it is not there runs that command once
//! with the same cargo and target directory. It does not rebuild a binary it finds: rerunning
//! cargo on every bench run would take the build lock and seconds of a 2-core machine, so after
//! changing keel-testkit rebuild it with that command. `KEEL_TESTKIT_BIN` names another binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use keel_testkit::TestServer;

const BUILD: &str = "cargo build --release -p keel-testkit --bin keel-testkit";

/// The server under a bench (see the module docs for how it is chosen).
pub(crate) struct BenchServer {
    uri: String,
    kind: Kind,
}

enum Kind {
    Child(ChildServer),
    InProcess(TestServer),
    External,
}

impl BenchServer {
    /// The server the environment asks for; panics with the reason and the fix when it cannot
    /// be started.
    pub(crate) async fn from_env() -> Self {
        Self::from_env_as(None).await
    }

    /// [`from_env`](Self::from_env) as a one-member replica set `rs0` keeping `oplog_size`
    /// changes (for change streams); an external deployment must be a replica set itself.
    pub(crate) async fn replica_set_from_env(oplog_size: usize) -> Self {
        Self::from_env_as(Some(oplog_size)).await
    }

    /// A standalone (`None`) or a one-member replica set keeping this many oplog entries.
    async fn from_env_as(replica_set_oplog: Option<usize>) -> Self {
        if let Ok(uri) = std::env::var("KEEL_BENCH_URI") {
            return Self {
                uri,
                kind: Kind::External,
            };
        }
        match std::env::var("KEEL_BENCH_SERVER").as_deref() {
            Ok("in-process") => {
                let mut builder = TestServer::builder();
                if let Some(oplog) = replica_set_oplog {
                    builder = builder.replica_set("rs0", 1).oplog_size(oplog);
                }
                let server = builder.start().await.unwrap();
                Self {
                    uri: server.uri(),
                    kind: Kind::InProcess(server),
                }
            }
            Ok("child") | Err(_) => {
                let oplog = replica_set_oplog.map(|n| n.to_string());
                let args: Vec<&str> = match &oplog {
                    Some(n) => vec!["--replica-set", "rs0", "--members", "1", "--oplog-size", n],
                    None => Vec::new(),
                };
                let child = ChildServer::start_with(&testkit_binary(), "127.0.0.1:0", &args);
                Self {
                    uri: child.uri.clone(),
                    kind: Kind::Child(child),
                }
            }
            Ok(other) => panic!(
                "KEEL_BENCH_SERVER={other} is not a server the benches know: use `child` (the \
                 default, keel-testkit in another process) or `in-process`, or set \
                 KEEL_BENCH_URI to use an existing deployment"
            ),
        }
    }

    /// The first host of the connection string (the member a fault proxy goes in front of).
    pub(crate) fn first_host(&self) -> std::net::SocketAddr {
        let hosts = self.uri.trim_start_matches("mongodb://");
        let host = hosts
            .split(['/', ',', '?'])
            .next()
            .and_then(|h| h.rsplit_once('@').map_or(Some(h), |(_, h)| Some(h)))
            .unwrap_or_default();
        std::net::ToSocketAddrs::to_socket_addrs(host)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("the bench server's first host `{host}` is not an address"))
    }

    /// The connection string.
    pub(crate) fn uri(&self) -> &str {
        &self.uri
    }

    /// What the server is, for the first line of a bench's output.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Child(child) => format!(
                "keel-testkit in another process (pid {}, {})",
                child.child.id(),
                child.binary.display()
            ),
            Kind::InProcess(_) => "keel-testkit in this process, on the client's thread: the \
                                   cache-bound worst case (KEEL_BENCH_SERVER=in-process)"
                .to_owned(),
            Kind::External => "the deployment at KEEL_BENCH_URI".to_owned(),
        }
    }

    /// The heading of the CPU column: the client's CPU, or client and server together when the
    /// server runs on the client's thread.
    pub(crate) fn cpu_label(&self) -> &'static str {
        match self.kind {
            Kind::InProcess(_) => "CPU/call, client+server",
            _ => "client CPU per call",
        }
    }

    /// Stops the server: every connection dropped, the port closed. Panics for an external
    /// deployment, which a bench cannot stop.
    pub(crate) async fn stop(&mut self) {
        match &mut self.kind {
            Kind::Child(child) => child.kill(),
            Kind::InProcess(server) => server.stop().await,
            Kind::External => panic!(
                "this bench stops and restarts the server, which it cannot do to the deployment \
                 at KEEL_BENCH_URI: unset KEEL_BENCH_URI to run it against keel-testkit"
            ),
        }
    }

    /// Starts the server again on the same address, empty (a child keeps no data).
    pub(crate) async fn restart(&mut self) {
        match &mut self.kind {
            Kind::Child(child) => {
                let (address, binary) = (child.address.clone(), child.binary.clone());
                let args = child.args.clone();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                *child = ChildServer::start_with(&binary, &address, &args);
            }
            Kind::InProcess(server) => server.restart().await.unwrap(),
            Kind::External => unreachable!("stop() refused an external deployment"),
        }
    }
}

/// A `keel-testkit` child process, killed when dropped.
struct ChildServer {
    child: Child,
    binary: PathBuf,
    /// The arguments after `--bind`, to restart it the same way.
    args: Vec<String>,
    /// `127.0.0.1:PORT`, to restart on the same port.
    address: String,
    uri: String,
    /// Kept open: the child would get SIGPIPE if it wrote to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ChildServer {
    /// Starts `binary --bind bind` and waits for the line it prints once it accepts
    /// connections (`keel-testkit listening on mongodb://…`).
    fn start(binary: &Path, bind: &str) -> Self {
        Self::start_with(binary, bind, &[])
    }

    /// [`start`](Self::start) with more arguments (`--replica-set`, ...).
    fn start_with(binary: &Path, bind: &str, args: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args(["--bind", bind])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {}: {e}; build it with `{BUILD}`",
                    binary.display()
                )
            });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // Blocking is fine: nothing else runs while the bench waits for its server.
        let read = stdout.read_line(&mut line);
        let uri = line
            .split_whitespace()
            .find(|word| word.starts_with("mongodb://"))
            .map(str::to_owned);
        let Some(uri) = uri else {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "{} did not print `listening on mongodb://…` (read {read:?}: {line:?}, exit \
                 {status:?}); its stderr is above",
                binary.display()
            );
        };
        let address = uri
            .trim_start_matches("mongodb://")
            .split(['/', '?', ','])
            .next()
            .unwrap_or_default()
            .to_owned();
        Self {
            child,
            binary: binary.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            address,
            uri,
            _stdout: stdout,
        }
    }

    /// SIGKILLs the child and reaps it (a no-op if it already exited).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `keel-testkit` binary: `KEEL_TESTKIT_BIN`, or the one next to this bench's executable,
/// built there with `BUILD` if it is missing.
fn testkit_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KEEL_TESTKIT_BIN") {
        return PathBuf::from(path);
    }
    // The bench runs as target/<profile>/deps/<bench>-<hash>; cargo puts binaries in
    // target/<profile>/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not inside a cargo target directory", exe.display()));
    let binary = profile_dir.join(format!("keel-testkit{}", std::env::consts::EXE_SUFFIX));
    if binary.exists() {
        return binary;
    }
    let target_dir = profile_dir.parent().unwrap();
    // `CARGO` is set by the cargo running the bench; the compile-time one is a fallback.
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(str::to_owned))
        .unwrap_or_else(|| "cargo".to_owned());
    eprintln!(
        "{} is missing: running `{BUILD}` (once; it stays there for the next runs)",
        binary.display()
    );
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "keel-testkit",
            "--bin",
            "keel-testkit",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    match status {
        Ok(status) if status.success() && binary.exists() => binary,
        other => panic!(
            "could not build the keel-testkit binary ({other:?}); run `{BUILD}` in the \
             workspace, or set KEEL_TESTKIT_BIN to a keel-testkit binary"
        ),
    }
}
