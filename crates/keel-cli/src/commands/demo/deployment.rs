//! Where the demo's workload runs: an embedded test server behind a fault proxy (faults are
//! injected), or a real deployment given with `--uri` (nothing is disturbed).

use std::time::Duration;

use keel_core::{Secret, redact::redact_uri};
use keel_testkit::{FaultProxy, TestServer};

use super::faults::FaultKind;

/// The database the demo writes to on the embedded server.
const EMBEDDED_DATABASE: &str = "keel_demo";

/// The deployment under the demo's workload.
pub(crate) enum Deployment {
    /// An in-process keel-testkit server; Keel reaches it through a [`FaultProxy`] so network
    /// faults happen on real sockets.
    Embedded {
        /// The MongoDB-compatible server (stopped and restarted for the outage).
        server: TestServer,
        /// The proxy between Keel and the server (resets, latency, black hole).
        proxy: FaultProxy,
    },
    /// A deployment the user owns: the demo creates its own database there and drops it after.
    Real {
        /// The connection string, credentials included.
        uri: Secret<String>,
        /// A database name no one uses: `keel_demo_` and random hex digits.
        database: String,
    },
}

impl Deployment {
    /// Starts a test server on 127.0.0.1 and a fault proxy in front of it.
    pub(crate) async fn embedded() -> Result<Self, String> {
        let server = TestServer::start()
            .await
            .map_err(|e| format!("cannot start the embedded test server: {e}."))?;
        let proxy = FaultProxy::start(server.addr())
            .await
            .map_err(|e| format!("cannot start the embedded fault proxy: {e}."))?;
        Ok(Self::Embedded { server, proxy })
    }

    /// A real deployment at `uri`, using a fresh database whose name ends in `suffix`.
    pub(crate) fn real(uri: String, suffix: u32) -> Self {
        Self::Real {
            uri: Secret::new(uri),
            database: format!("keel_demo_{suffix:08x}"),
        }
    }

    /// The connection string Keel connects with. Contains credentials: never print it.
    pub(crate) fn connection_string(&self) -> String {
        match self {
            Self::Embedded { proxy, .. } => proxy.uri(),
            Self::Real { uri, .. } => uri.expose().clone(),
        }
    }

    /// The database the workload writes to.
    pub(crate) fn database(&self) -> &str {
        match self {
            Self::Embedded { .. } => EMBEDDED_DATABASE,
            Self::Real { database, .. } => database,
        }
    }

    /// Whether the demo must drop its database at the end (it does not own the server).
    pub(crate) fn is_real(&self) -> bool {
        matches!(self, Self::Real { .. })
    }

    /// One line saying what the workload runs against, credentials redacted.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Embedded { server, proxy } => format!(
                "embedded keel-testkit server on {} (MongoDB wire protocol, in memory), reached \
                 through a fault proxy on {}",
                server.addr(),
                proxy.addr()
            ),
            Self::Real { uri, database } => format!(
                "{} (database {database}, created for this run and dropped after it)",
                redact_uri(uri.expose())
            ),
        }
    }

    /// Whether this deployment can cause `kind`. A real deployment is never disturbed.
    pub(crate) fn can_cause(&self, kind: FaultKind) -> bool {
        match self {
            Self::Embedded { .. } => !kind.needs_replica_set(),
            Self::Real { .. } => false,
        }
    }

    /// Starts a fault; returns a few words of detail for the event log.
    pub(crate) async fn start_fault(&self, kind: FaultKind) -> Result<String, String> {
        let Self::Embedded { server, proxy } = self else {
            return Err(format!(
                "the demo does not inject a {kind} into a real deployment."
            ));
        };
        match kind {
            FaultKind::ResetConnections => {
                let open = proxy.connection_count();
                proxy.reset_all();
                Ok(format!("{open} open connections reset"))
            }
            FaultKind::Latency { delay, jitter } => {
                proxy.set_latency(delay, jitter);
                Ok(format!(
                    "every packet delayed {}±{} ms",
                    delay.as_millis(),
                    jitter.as_millis()
                ))
            }
            FaultKind::BlackHole => {
                proxy.black_hole(true);
                Ok("packets silently dropped, connections hang".to_owned())
            }
            FaultKind::Outage => {
                server.stop().await;
                Ok("server stopped".to_owned())
            }
            FaultKind::StepDown => Err(format!(
                "a {kind} needs a replica set, and the embedded deployment is a single server."
            )),
        }
    }

    /// Ends a fault that lasts (instant faults need nothing).
    pub(crate) async fn end_fault(&self, kind: FaultKind) -> Result<(), String> {
        let Self::Embedded { server, proxy } = self else {
            return Ok(());
        };
        match kind {
            FaultKind::Latency { .. } => proxy.set_latency(Duration::ZERO, Duration::ZERO),
            FaultKind::BlackHole => proxy.black_hole(false),
            FaultKind::Outage => server
                .restart()
                .await
                .map_err(|e| format!("cannot restart the embedded test server: {e}."))?,
            FaultKind::ResetConnections | FaultKind::StepDown => {}
        }
        Ok(())
    }

    /// Ends every fault at once (the run was interrupted, or is over): the final check must
    /// run against a healthy deployment.
    pub(crate) async fn heal(&self) -> Result<(), String> {
        let Self::Embedded { server, proxy } = self else {
            return Ok(());
        };
        proxy
            .clear()
            .await
            .map_err(|e| format!("cannot clear the fault proxy: {e}."))?;
        if !server.is_running() {
            server
                .restart()
                .await
                .map_err(|e| format!("cannot restart the embedded test server: {e}."))?;
        }
        Ok(())
    }
}
