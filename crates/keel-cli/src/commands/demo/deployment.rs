//! Where the demo's workload runs: an embedded three-member replica set (faults are injected),
//! or a real deployment given with `--uri` (nothing is disturbed).
//!
//! The embedded replica set's faults are caused the way they happen in production, from the
//! server side: mongod's `failCommand` fail point drops connections mid-command and adds
//! latency, `pause` freezes every member (requests read, never answered, like a network
//! partition), `stop`/`restart` is an outage, `stop_member` of the primary a crash the other
//! members elect a new primary after, `step_down` a failover. (A TCP fault proxy cannot
//! sit in front of a replica set: the driver connects to the addresses the members advertise.)

use keel_core::{Secret, redact::redact_uri};
use keel_testkit::{FailCommand, TestServer};

use super::faults::FaultKind;

/// The database the demo writes to on the embedded replica set.
const EMBEDDED_DATABASE: &str = "keel_demo";

/// The embedded replica set's name and size.
const REPLICA_SET: &str = "rs0";
const MEMBERS: usize = 3;

/// The demo's `appName`: fail points fire only for the demo's own commands.
pub(crate) const APP_NAME: &str = "keel-demo";

/// The commands the workload sends, which the fail points target.
const WORKLOAD_COMMANDS: [&str; 6] = ["find", "insert", "update", "aggregate", "count", "getMore"];

/// How many commands lose their connection in a "connection reset": about one per worker.
const RESET_COMMANDS: u32 = 8;

/// The deployment under the demo's workload.
pub(crate) enum Deployment {
    /// An in-process keel-testkit replica set: three members on 127.0.0.1, one data set.
    Embedded {
        /// The replica set (every fault is caused through it).
        server: TestServer,
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
    /// Starts a three-member replica set on 127.0.0.1 whose secondaries elect a new primary
    /// after `election_timeout` without one.
    pub(crate) async fn embedded(election_timeout: std::time::Duration) -> Result<Self, String> {
        let server = TestServer::builder()
            .replica_set(REPLICA_SET, MEMBERS)
            .election_timeout(election_timeout)
            .start()
            .await
            .map_err(|e| format!("cannot start the embedded replica set: {e}."))?;
        Ok(Self::Embedded { server })
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
            Self::Embedded { server } => server.uri(),
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
            Self::Embedded { server } => {
                let members: Vec<String> =
                    server.members().iter().map(ToString::to_string).collect();
                format!(
                    "embedded keel-testkit replica set {REPLICA_SET} ({MEMBERS} members on {}; \
                     MongoDB wire protocol, in memory)",
                    members.join(", ")
                )
            }
            Self::Real { uri, database } => format!(
                "{} (database {database}, created for this run and dropped after it)",
                redact_uri(uri.expose())
            ),
        }
    }

    /// Whether this deployment can cause `kind`. A real deployment is never disturbed.
    pub(crate) fn can_cause(&self, kind: FaultKind) -> bool {
        match self {
            Self::Embedded { server } => {
                !kind.needs_replica_set() || server.replica_set_name().is_some()
            }
            Self::Real { .. } => false,
        }
    }

    /// Starts a fault; returns a few words of detail for the event log.
    pub(crate) async fn start_fault(&self, kind: FaultKind) -> Result<String, String> {
        let Self::Embedded { server } = self else {
            return Err(format!(
                "the demo does not inject a {kind} into a real deployment."
            ));
        };
        let fail_point = |fail: FailCommand| {
            server
                .fail_command(fail.app_name(APP_NAME))
                .map_err(|e| format!("cannot set the fail point: {e}."))
        };
        match kind {
            FaultKind::ResetConnections => {
                fail_point(
                    FailCommand::new(WORKLOAD_COMMANDS)
                        .close_connection()
                        .times(RESET_COMMANDS),
                )?;
                Ok(format!(
                    "the next {RESET_COMMANDS} commands lose their connection mid-call"
                ))
            }
            FaultKind::Latency { delay, .. } => {
                fail_point(FailCommand::new(WORKLOAD_COMMANDS).block_connection(delay))?;
                Ok(format!(
                    "every command held {} ms by the server",
                    delay.as_millis()
                ))
            }
            FaultKind::BlackHole => {
                server.pause();
                Ok("every member frozen: requests are read, never answered".to_owned())
            }
            FaultKind::Outage => {
                server.stop().await;
                Ok("every member stopped".to_owned())
            }
            FaultKind::PrimaryKilled => {
                let primary = server
                    .primary()
                    .ok_or_else(|| "there is no primary to kill.".to_owned())?;
                server
                    .stop_member(primary)
                    .await
                    .map_err(|e| format!("cannot stop the primary: {e}."))?;
                let timeout = server.election_timeout().unwrap_or_default();
                let addr = server
                    .members()
                    .get(primary)
                    .map_or_else(|| "?".to_owned(), ToString::to_string);
                Ok(format!(
                    "primary {addr} down; the others elect a new one after {} ms without it",
                    timeout.as_millis()
                ))
            }
            FaultKind::StepDown => {
                let old = server.primary();
                let new = server
                    .step_down()
                    .map_err(|e| format!("the step-down was refused: {e}."))?;
                let name = |member: Option<usize>| {
                    member
                        .and_then(|m| server.members().get(m).copied())
                        .map_or_else(|| "?".to_owned(), |addr| addr.to_string())
                };
                Ok(format!(
                    "primary {} stepped down, {} elected",
                    name(old),
                    name(Some(new))
                ))
            }
        }
    }

    /// Ends a fault that lasts (instant faults need nothing).
    pub(crate) async fn end_fault(&self, kind: FaultKind) -> Result<(), String> {
        let Self::Embedded { server } = self else {
            return Ok(());
        };
        match kind {
            FaultKind::Latency { .. } | FaultKind::ResetConnections => server.clear_fail_points(),
            FaultKind::BlackHole => server.resume(),
            FaultKind::Outage => server
                .restart()
                .await
                .map_err(|e| format!("cannot restart the embedded replica set: {e}."))?,
            FaultKind::PrimaryKilled => start_stopped_members(server).await?,
            FaultKind::StepDown => {}
        }
        Ok(())
    }

    /// Ends every fault at once (the run was interrupted, or is over): the final check must
    /// run against a healthy deployment.
    pub(crate) async fn heal(&self) -> Result<(), String> {
        let Self::Embedded { server } = self else {
            return Ok(());
        };
        server.clear_fail_points();
        server.resume();
        if !server.is_running() {
            server
                .restart()
                .await
                .map_err(|e| format!("cannot restart the embedded replica set: {e}."))?;
        }
        start_stopped_members(server).await
    }
}

/// Starts every member that was killed (it rejoins as a secondary).
async fn start_stopped_members(server: &TestServer) -> Result<(), String> {
    for member in 0..server.members().len() {
        if !server.is_member_running(member) {
            server
                .start_member(member)
                .await
                .map_err(|e| format!("cannot restart member {member}: {e}."))?;
        }
    }
    Ok(())
}
