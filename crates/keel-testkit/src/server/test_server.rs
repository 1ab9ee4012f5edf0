//! [`TestServer`]: start on a port, stop, restart on the same port, pause, configure fail points.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::listener::Running;
use super::{Shared, lock};
use crate::error::TestkitError;
use crate::fail_point::FailCommand;
use crate::net::bind_reusable;
use crate::storage::Storage;

/// An in-process MongoDB-compatible server for tests.
///
/// ```
/// # #![allow(clippy::unwrap_used)]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use keel_testkit::{FailCommand, TestServer};
/// use mongodb::bson::{doc, Document};
///
/// let server = TestServer::start().await?;
/// let client = mongodb::Client::with_uri_str(server.uri()).await?;
/// let users = client.database("app").collection::<Document>("users");
/// users.insert_one(doc! {"_id": 1, "name": "ada"}).await?;
///
/// // Make the next insert fail the way a stepping-down primary would.
/// server.fail_command(FailCommand::new(["insert"]).error_code(11602).times(1))?;
/// assert!(users.insert_one(doc! {"_id": 2}).await.is_err());
/// assert!(users.insert_one(doc! {"_id": 2}).await.is_ok());
///
/// server.restart().await?; // same port, data kept, connections dropped
/// assert_eq!(users.count_documents(doc! {}).await?, 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    data_dir: Option<PathBuf>,
    running: Mutex<Option<Running>>,
    // Serialises stop/restart so two concurrent restarts cannot both bind.
    lifecycle: tokio::sync::Mutex<()>,
}

/// Options for [`TestServer`]; see [`TestServer::builder`].
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    bind: SocketAddr,
    data_dir: Option<PathBuf>,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        // Loopback and an ephemeral port: tests never collide and never listen publicly.
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_dir: None,
        }
    }
}

impl TestServerBuilder {
    /// The address to listen on (default `127.0.0.1:0`, an ephemeral port).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Persist data in this directory (default: memory only). Data written before a
    /// [`restart`](TestServer::restart), or by an earlier server on the same directory, is
    /// loaded back.
    #[must_use]
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Starts the server; it accepts connections when this returns.
    pub async fn start(self) -> Result<TestServer, TestkitError> {
        let storage = match &self.data_dir {
            Some(dir) => Storage::open(dir)?,
            None => Storage::default(),
        };
        let listener = bind_reusable(self.bind)?;
        let addr = listener.local_addr().map_err(|source| TestkitError::Bind {
            addr: self.bind,
            source,
        })?;
        let shared = Arc::new(Shared::new(storage));
        let running = Running::spawn(Arc::clone(&shared), listener);
        Ok(TestServer {
            shared,
            addr,
            data_dir: self.data_dir,
            running: Mutex::new(Some(running)),
            lifecycle: tokio::sync::Mutex::new(()),
        })
    }
}

impl TestServer {
    /// Starts an in-memory server on `127.0.0.1` and an ephemeral port.
    pub async fn start() -> Result<Self, TestkitError> {
        TestServerBuilder::default().start().await
    }

    /// Options: bind address, data directory.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// The address the server listens on (the same across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mongodb://127.0.0.1:<port>/`, ready for a driver. Append options after it
    /// (e.g. `?appName=x`).
    pub fn uri(&self) -> String {
        format!("mongodb://{}/", self.addr)
    }

    /// Whether the server is accepting connections (false between `stop` and `restart`).
    pub fn is_running(&self) -> bool {
        lock(&self.running).is_some()
    }

    /// Stops listening and drops every open connection. Data stays (in memory, and on disk
    /// with a data directory). Idempotent.
    pub async fn stop(&self) {
        let _guard = self.lifecycle.lock().await;
        self.stop_locked().await;
    }

    async fn stop_locked(&self) {
        let running = lock(&self.running).take();
        if let Some(running) = running {
            running.shutdown().await;
        }
        // A stopped process answers nothing; a restarted one has no held requests.
        self.shared.paused.send_replace(false);
    }

    /// Stops (if running) and starts again on the same port, like restarting mongod: every
    /// connection is dropped, cursors and fail points are cleared, data is kept. With a data
    /// directory, data is reloaded from disk, proving it was persisted.
    pub async fn restart(&self) -> Result<(), TestkitError> {
        let _guard = self.lifecycle.lock().await;
        self.stop_locked().await;
        if let Some(dir) = &self.data_dir {
            let reloaded = Storage::open(dir)?;
            *lock(&self.shared.storage) = reloaded;
        }
        lock(&self.shared.cursors).clear();
        lock(&self.shared.fail_points).configure(FailCommand::off());
        let listener = bind_reusable(self.addr)?;
        *lock(&self.running) = Some(Running::spawn(Arc::clone(&self.shared), listener));
        Ok(())
    }

    /// Freezes the server like `SIGSTOP`: connections are accepted and requests read, but no
    /// reply is sent until [`resume`](Self::resume). Drivers see timeouts, not errors.
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Ends a [`pause`](Self::pause); held requests are then answered.
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Configures the `failCommand` fail point, exactly as the `configureFailPoint` command
    /// would (a mode of `off` disables it).
    pub fn fail_command(&self, fail_point: FailCommand) -> Result<(), TestkitError> {
        if fail_point.commands().is_empty() && *fail_point.mode() != crate::FailPointMode::Off {
            return Err(TestkitError::InvalidFailPoint(
                "failCommands must name at least one command".into(),
            ));
        }
        lock(&self.shared.fail_points).configure(fail_point);
        Ok(())
    }

    /// Disables the `failCommand` fail point.
    pub fn clear_fail_points(&self) {
        lock(&self.shared.fail_points).configure(FailCommand::off());
    }

    /// The number of currently open client connections.
    pub fn connection_count(&self) -> i64 {
        super::Counters::get(&self.shared.counters.current_connections)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = lock(&self.running).as_ref() {
            running.abort();
        }
    }
}
