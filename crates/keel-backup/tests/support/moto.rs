//! A real S3-compatible server for tests: moto's server mode (PyPI `moto[server]`), installed
//! with `pip install --user` when missing (falling back to a plain pip install, then Debian's
//! `python3-moto`, as xtask does for PyMongo), started on a free 127.0.0.1 port and killed on
//! drop. When it cannot be had, `start` says why so the test can print that it skipped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub(crate) struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) endpoint: String,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn quiet(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn installed() -> bool {
    quiet(Command::new("python3").args(["-c", "import moto.server, flask, werkzeug"]))
}

fn ensure_installed() -> Result<(), String> {
    if installed() {
        return Ok(());
    }
    let pip = |extra: &[&str]| {
        let mut args = vec!["-m", "pip", "install", "--quiet"];
        args.extend_from_slice(extra);
        args.push("moto[server]");
        quiet(Command::new("python3").args(args))
    };
    if !pip(&["--user"]) && !pip(&[]) {
        let sudo = !quiet(Command::new("sh").args(["-c", "[ \"$(id -u)\" = 0 ]"]));
        let step = [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "python3-moto",
            "python3-flask",
        ];
        let mut command = if sudo {
            let mut c = Command::new("sudo");
            c.arg("-n").args(step);
            c
        } else {
            let mut c = Command::new(step[0]);
            c.args(&step[1..]);
            c
        };
        quiet(command.env("DEBIAN_FRONTEND", "noninteractive"));
    }
    if installed() {
        Ok(())
    } else {
        Err("moto's S3 server (pip install --user 'moto[server]') could not be installed".into())
    }
}

/// Starts moto, or says why it cannot.
pub(crate) fn start() -> Result<Moto, String> {
    ensure_installed()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("python3 -m moto.server did not start: {e}"))?;
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        port,
    };
    // Await the listening socket (moto takes a second or two to import).
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("moto's server did not listen within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(moto)
}

impl Moto {
    /// Creates a bucket (moto accepts an unsigned `PUT /<bucket>`).
    pub(crate) fn create_bucket(&self, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "{response}"
        );
    }
}
