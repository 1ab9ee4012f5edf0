//! The accept loop, and the handles that let a server drop every connection at once.

use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Shared, connection, lock};

/// A running accept loop and the connections it spawned.
#[derive(Debug)]
pub(crate) struct Running {
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Running {
    /// Accepts connections for replica-set member `member` (0 for a standalone).
    pub(crate) fn spawn(shared: Arc<Shared>, listener: TcpListener, member: usize) -> Self {
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let task = tokio::spawn(connection::serve(Arc::clone(&shared), stream, member));
                let mut list = lock(&conns);
                list.retain(|t| !t.is_finished());
                list.push(task);
            }
        });
        Self {
            accept,
            connections,
        }
    }

    /// Stops accepting and drops every connection; returns once the listening socket is closed.
    pub(crate) async fn shutdown(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.connections));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Best-effort stop without waiting (used from `Drop`).
    pub(crate) fn abort(&self) {
        self.accept.abort();
        for t in lock(&self.connections).iter() {
            t.abort();
        }
    }
}
