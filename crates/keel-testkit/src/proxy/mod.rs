//! [`FaultProxy`]: a TCP proxy that injects network faults between a client and any server.

mod config;
mod connection;
mod pump;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::TestkitError;
use crate::net::bind_reusable;
use crate::server::lock;
use config::ProxyConfig;

/// State shared by the proxy handle and its connection tasks.
#[derive(Debug)]
struct Inner {
    upstream: SocketAddr,
    config: watch::Sender<ProxyConfig>,
    /// Bumped by [`FaultProxy::reset_all`]; every connection resets when it changes.
    resets: watch::Sender<u64>,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// A TCP proxy with run-time switchable faults, to put in front of a [`TestServer`](crate::TestServer)
/// or a real MongoDB.
///
/// ```
/// # #![allow(clippy::unwrap_used)]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use keel_testkit::{FaultProxy, TestServer};
///
/// let server = TestServer::start().await?;
/// let proxy = FaultProxy::start(server.addr()).await?;
/// let client = mongodb::Client::with_uri_str(format!("{}?serverSelectionTimeoutMS=500", proxy.uri())).await?;
/// proxy.black_hole(true);
/// assert!(client.database("admin").run_command(mongodb::bson::doc! {"ping": 1}).await.is_err());
/// proxy.clear().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    inner: Arc<Inner>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1` (ephemeral port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self, TestkitError> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), upstream).await
    }

    /// Like [`start`](Self::start) on a chosen listening address.
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> Result<Self, TestkitError> {
        let listener = bind_reusable(listen)?;
        let addr = listener.local_addr().map_err(|source| TestkitError::Bind {
            addr: listen,
            source,
        })?;
        let inner = Arc::new(Inner {
            upstream,
            config: watch::Sender::new(ProxyConfig::default()),
            resets: watch::Sender::new(0),
            connections: Mutex::new(Vec::new()),
        });
        let accept = spawn_accept(Arc::clone(&inner), listener);
        Ok(Self {
            inner,
            addr,
            accept: Mutex::new(Some(accept)),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mongodb://<proxy addr>/` (with `directConnection=true` implied by a single host).
    pub fn uri(&self) -> String {
        format!("mongodb://{}/", self.addr)
    }

    /// Delays every chunk of data in each direction by `latency`, plus or minus a uniformly
    /// random `jitter` (never below zero). Order within a connection is preserved.
    pub fn set_latency(&self, latency: Duration, jitter: Duration) {
        self.inner.config.send_modify(|c| {
            c.latency = latency;
            c.jitter = jitter;
        });
    }

    /// Limits each direction of each connection to `bytes_per_sec` (`None`: unlimited).
    pub fn set_bandwidth(&self, bytes_per_sec: Option<u64>) {
        self.inner
            .config
            .send_modify(|c| c.bandwidth = bytes_per_sec.filter(|b| *b > 0));
    }

    /// Resets (TCP RST) every open connection now; new connections are still accepted.
    pub fn reset_all(&self) {
        self.inner.resets.send_modify(|n| *n += 1);
    }

    /// Resets each connection once it has forwarded `bytes` (both directions together);
    /// `None` disables. Applies to open connections too, counting from their start.
    pub fn reset_after_bytes(&self, bytes: Option<u64>) {
        self.inner.config.send_modify(|c| c.reset_after = bytes);
    }

    /// While on, accepted connections stay open but no byte is forwarded either way.
    pub fn black_hole(&self, on: bool) {
        self.inner.config.send_modify(|c| c.black_hole = on);
    }

    /// While on, the proxy's port is closed so new connections are refused
    /// (`ECONNREFUSED`); open connections keep working. Off re-opens the same port.
    pub async fn refuse_new(&self, refuse: bool) -> Result<(), TestkitError> {
        let current = lock(&self.accept).take();
        if refuse {
            if let Some(task) = current {
                task.abort();
                let _ = task.await;
            }
            return Ok(());
        }
        let task = match current {
            Some(task) => task,
            None => spawn_accept(Arc::clone(&self.inner), bind_reusable(self.addr)?),
        };
        *lock(&self.accept) = Some(task);
        Ok(())
    }

    /// Turns every fault off (open connections keep running) and accepts connections again.
    pub async fn clear(&self) -> Result<(), TestkitError> {
        self.inner.config.send_replace(ProxyConfig::default());
        self.refuse_new(false).await
    }

    /// The number of connections currently proxied.
    pub fn connection_count(&self) -> usize {
        let mut list = lock(&self.inner.connections);
        list.retain(|t| !t.is_finished());
        list.len()
    }
}

fn spawn_accept(inner: Arc<Inner>, listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let task = tokio::spawn(connection::run(Arc::clone(&inner), client));
            let mut list = lock(&inner.connections);
            list.retain(|t| !t.is_finished());
            list.push(task);
        }
    })
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.accept).as_ref() {
            task.abort();
        }
        for t in lock(&self.inner.connections).iter() {
            t.abort();
        }
    }
}
