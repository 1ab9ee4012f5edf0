//! [`TestServer`]: start on a port, stop, restart on the same port, pause, configure fail points,
//! replica-set roles, connection strings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::builder::TestServerBuilder;
use super::listener::Running;
use super::replica_set::{ElectionError, ReplicaSet};
use super::uri::{CaFile, Credentials, percent_encode, percent_encode_path};
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
    pub(super) shared: Arc<Shared>,
    /// The CA of a generated TLS identity, for clients' `tlsCAFile`.
    pub(super) ca_file: Option<CaFile>,
    pub(super) credentials: Option<Credentials>,
    /// One address per replica-set member (one for a standalone).
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) data_dir: Option<PathBuf>,
    /// One accept loop per member; `None` for a stopped member.
    pub(super) running: Mutex<Vec<Option<Running>>>,
    /// The election monitor (replica sets).
    pub(super) elections: Option<tokio::task::JoinHandle<()>>,
    /// The periodic no-op writer (replica sets).
    pub(super) noop_writer: Option<tokio::task::JoinHandle<()>>,
    /// Serialises stop/restart so two concurrent restarts cannot both bind.
    pub(super) lifecycle: tokio::sync::Mutex<()>,
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

    /// Starts an in-memory replica set named `name` with `members` members on `127.0.0.1`,
    /// each on its own ephemeral port, sharing one data set. Member 0 is primary; the others
    /// are secondaries. Drivers discover and monitor it as a replica set from [`uri`](Self::uri).
    ///
    /// ```
    /// # #![allow(clippy::unwrap_used)]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel_testkit::TestServer;
    ///
    /// let rs = TestServer::replica_set("rs0", 3).await?;
    /// assert!(rs.uri().ends_with("/?replicaSet=rs0"));
    /// assert_eq!(rs.members().len(), 3);
    /// assert_eq!(rs.primary(), Some(0));
    /// let new_primary = rs.step_down()?; // member 1 takes over at once
    /// assert_eq!(rs.primary(), Some(new_primary));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn replica_set(
        name: impl Into<String>,
        members: usize,
    ) -> Result<Self, TestkitError> {
        TestServerBuilder::default()
            .replica_set(name, members)
            .start()
            .await
    }

    /// The address the server listens on (the same across restarts). For a replica set, member
    /// 0's address; see [`members`](Self::members).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every member's address, in member order (one address for a standalone).
    pub fn members(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// `mongodb://127.0.0.1:<port>/`, ready for a driver; for a replica set every member and
    /// `?replicaSet=<name>`, e.g. `mongodb://127.0.0.1:1,127.0.0.1:2/?replicaSet=rs0`; with
    /// [`auth`](TestServerBuilder::auth), `user:password@` (percent-encoded). To add options,
    /// use [`uri_with`](Self::uri_with), which picks `?` or `&`.
    pub fn uri(&self) -> String {
        let userinfo = self.credentials.as_ref().map_or_else(String::new, |c| {
            format!(
                "{}:{}@",
                percent_encode(&c.user),
                percent_encode(&c.password)
            )
        });
        self.uri_for(&userinfo)
    }

    /// [`uri`](Self::uri) without `user:password@`, safe to print.
    pub fn uri_without_credentials(&self) -> String {
        self.uri_for("")
    }

    fn uri_for(&self, userinfo: &str) -> String {
        let hosts: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
        let mut options = Vec::new();
        if let Some(rs) = &self.shared.replica_set {
            options.push(format!("replicaSet={}", rs.name));
        }
        if self.shared.tls.is_some() {
            options.push("tls=true".to_owned());
        }
        if let Some(ca) = &self.ca_file {
            options.push(format!(
                "tlsCAFile={}",
                percent_encode_path(&ca.0.to_string_lossy())
            ));
        }
        let query = if options.is_empty() {
            String::new()
        } else {
            format!("?{}", options.join("&"))
        };
        format!("mongodb://{userinfo}{}/{query}", hosts.join(","))
    }

    /// The file holding the CA certificate of a [`TlsIdentity::self_signed`](crate::TlsIdentity::self_signed) identity (what a
    /// driver's `tlsCAFile` needs); removed when the server is dropped.
    pub fn tls_ca_file(&self) -> Option<&Path> {
        self.ca_file.as_ref().map(|f| f.0.as_path())
    }

    /// [`uri`](Self::uri) with extra connection-string options, e.g.
    /// `server.uri_with("appName=svc&retryWrites=false")`.
    pub fn uri_with(&self, options: &str) -> String {
        let uri = self.uri();
        let options = options.trim_start_matches(['?', '&']);
        if options.is_empty() {
            uri
        } else if uri.contains('?') {
            format!("{uri}&{options}")
        } else {
            format!("{uri}?{options}")
        }
    }

    /// The replica set's name (`None` for a standalone).
    pub fn replica_set_name(&self) -> Option<&str> {
        self.shared.replica_set.as_ref().map(|rs| rs.name.as_str())
    }

    /// The index of the primary member (`Some(0)` for a standalone).
    pub fn primary(&self) -> Option<usize> {
        match &self.shared.replica_set {
            Some(rs) => rs.primary(),
            None => Some(0),
        }
    }

    /// The primary steps down and the next member (in member order) is elected at once, as
    /// `replSetStepDown` does on mongod. The old primary then answers writes with
    /// `NotWritablePrimary` (10107, labelled `RetryableWriteError` for retryable writes), every
    /// member's `hello` changes (awaitable `hello`s return at once), and drivers follow the new
    /// primary by themselves. As on mongod 4.2+, open connections stay open. Returns the new
    /// primary's index. Fails for a standalone or a one-member set (nobody to take over).
    pub fn step_down(&self) -> Result<usize, TestkitError> {
        self.rs()?.step_down().map_err(election_error)
    }

    /// Makes `member` the primary (a new election term); the old primary becomes a secondary.
    /// Electing the current primary changes nothing. Works whatever the members' state, for
    /// exact control; [`stop_member`](Self::stop_member) and
    /// [`pause_member`](Self::pause_member) trigger real elections.
    pub fn elect(&self, member: usize) -> Result<(), TestkitError> {
        self.rs()?.elect(member).map_err(election_error)
    }

    /// How long the secondaries of a replica set wait for a silent primary before electing
    /// another ([`TestServerBuilder::election_timeout`]; mongod's default 10 s). `None` for a
    /// standalone.
    pub fn election_timeout(&self) -> Option<std::time::Duration> {
        self.shared
            .replica_set
            .as_ref()
            .map(|rs| rs.election_timeout)
    }

    /// Waits until a member other than `old_primary` is primary and returns it: after
    /// [`stop_member`](Self::stop_member) or [`pause_member`](Self::pause_member) of the
    /// primary, that is the election. Never returns if no election can happen (a standalone,
    /// or no majority answering): wrap it in a timeout.
    pub async fn wait_for_new_primary(&self, old_primary: usize) -> usize {
        let Some(rs) = &self.shared.replica_set else {
            return std::future::pending().await;
        };
        let mut roles = rs.subscribe();
        loop {
            match rs.primary() {
                Some(p) if p != old_primary => return p,
                _ => {}
            }
            if roles.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    fn rs(&self) -> Result<&ReplicaSet, TestkitError> {
        self.shared
            .replica_set
            .as_ref()
            .ok_or_else(|| TestkitError::Election("this server is not a replica set".into()))
    }

    /// Whether the server is accepting connections (false between `stop` and `restart`; true
    /// while any replica-set member runs).
    pub fn is_running(&self) -> bool {
        lock(&self.running).iter().any(Option::is_some)
    }

    /// Whether replica-set member `member` is accepting connections.
    pub fn is_member_running(&self, member: usize) -> bool {
        lock(&self.running).get(member).is_some_and(Option::is_some)
    }

    /// Stops listening and drops every open connection. Data stays (in memory, and on disk
    /// with a data directory). Idempotent.
    pub async fn stop(&self) {
        let _guard = self.lifecycle.lock().await;
        self.stop_locked().await;
    }

    async fn stop_locked(&self) {
        let running: Vec<Running> = lock(&self.running)
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for member in running {
            member.shutdown().await;
        }
        // A stopped process answers nothing; a restarted one has no held requests.
        self.shared.paused.send_replace(super::Frozen::default());
        self.refresh_liveness();
    }

    /// Tells the election monitor which members answer: listening and not frozen.
    fn refresh_liveness(&self) {
        let Some(rs) = &self.shared.replica_set else {
            return;
        };
        let running = lock(&self.running);
        let frozen = self.shared.paused.borrow().clone();
        let alive = (0..self.addrs.len())
            .map(|i| running.get(i).is_some_and(Option::is_some) && !frozen.holds(i))
            .collect();
        drop(running);
        rs.set_liveness(alive);
    }

    fn member_index(&self, member: usize) -> Result<usize, TestkitError> {
        self.rs()?;
        if member < self.addrs.len() {
            Ok(member)
        } else {
            Err(TestkitError::Election(format!(
                "there is no member {member}: the set has {} members",
                self.addrs.len()
            )))
        }
    }

    /// Stops replica-set member `member` as if its process died: its port closes and its
    /// connections drop. Data stays (the members share it). If it was the primary, the others
    /// elect a new one after the [election timeout](Self::election_timeout), provided a
    /// majority of the set still answers. Idempotent.
    pub async fn stop_member(&self, member: usize) -> Result<(), TestkitError> {
        let member = self.member_index(member)?;
        let _guard = self.lifecycle.lock().await;
        let running = lock(&self.running).get_mut(member).and_then(Option::take);
        if let Some(running) = running {
            running.shutdown().await;
        }
        self.shared
            .paused
            .send_modify(|f| f.members.retain(|m| *m != member));
        self.refresh_liveness();
        Ok(())
    }

    /// Starts a stopped member again on its port, as a new process (a new
    /// `topologyVersion.processId`), in the role it has now: a secondary if another member was
    /// elected meanwhile. A running member is left alone.
    pub async fn start_member(&self, member: usize) -> Result<(), TestkitError> {
        let member = self.member_index(member)?;
        let _guard = self.lifecycle.lock().await;
        if self.is_member_running(member) {
            return Ok(());
        }
        let listener = bind_reusable(self.addrs[member])?;
        if let Some(rs) = &self.shared.replica_set {
            rs.member_restarted(member);
        }
        if let Some(slot) = lock(&self.running).get_mut(member) {
            *slot = Some(Running::spawn(Arc::clone(&self.shared), listener, member));
        }
        self.refresh_liveness();
        Ok(())
    }

    /// Freezes replica-set member `member` like `SIGSTOP` (as [`pause`](Self::pause) does for
    /// the whole server): requests are read, replies held. If it was the primary, the others
    /// elect a new one after the [election timeout](Self::election_timeout) (with a majority
    /// answering); once resumed, it learns the new term and is a secondary.
    pub fn pause_member(&self, member: usize) -> Result<(), TestkitError> {
        let member = self.member_index(member)?;
        self.shared.paused.send_modify(|f| {
            if !f.members.contains(&member) {
                f.members.push(member);
            }
        });
        self.refresh_liveness();
        Ok(())
    }

    /// Ends a [`pause_member`](Self::pause_member); held requests are then answered.
    pub fn resume_member(&self, member: usize) -> Result<(), TestkitError> {
        let member = self.member_index(member)?;
        self.shared
            .paused
            .send_modify(|f| f.members.retain(|m| *m != member));
        self.refresh_liveness();
        Ok(())
    }

    /// Stops (if running) and starts again on the same port, like restarting mongod: every
    /// connection is dropped, cursors and fail points are cleared, data is kept. With a data
    /// directory, data is reloaded from disk, proving it was persisted.
    pub async fn restart(&self) -> Result<(), TestkitError> {
        let _guard = self.lifecycle.lock().await;
        self.stop_locked().await;
        if let Some(dir) = &self.data_dir {
            let mut reloaded = Storage::open(dir)?;
            let mut storage = lock(&self.shared.storage);
            reloaded.carry_over(&mut storage);
            *storage = reloaded;
        }
        lock(&self.shared.cursors).clear();
        lock(&self.shared.fail_points).clear();
        if let Some(rs) = &self.shared.replica_set {
            rs.restarted();
        }
        // Bind every member before serving any, so a failure leaves the server stopped.
        let listeners = self
            .addrs
            .iter()
            .map(|addr| bind_reusable(*addr))
            .collect::<Result<Vec<_>, _>>()?;
        *lock(&self.running) = listeners
            .into_iter()
            .enumerate()
            .map(|(member, l)| Some(Running::spawn(Arc::clone(&self.shared), l, member)))
            .collect();
        self.refresh_liveness();
        Ok(())
    }

    /// Freezes the server like `SIGSTOP`: connections are accepted and requests read, but no
    /// reply is sent until [`resume`](Self::resume). Drivers see timeouts, not errors.
    /// For a replica set this freezes every member, so nobody is elected; freeze one member
    /// with [`pause_member`](Self::pause_member).
    pub fn pause(&self) {
        self.shared.paused.send_modify(|f| f.all = true);
        self.refresh_liveness();
    }

    /// Ends a [`pause`](Self::pause) (and every [`pause_member`](Self::pause_member)); held
    /// requests are then answered.
    pub fn resume(&self) {
        self.shared.paused.send_replace(super::Frozen::default());
        self.refresh_liveness();
    }

    /// Configures the `failCommand` fail point (or `failGetMoreAfterCursorCheckout`, see
    /// [`FailCommand::get_more_after_cursor_checkout`]), exactly as the `configureFailPoint`
    /// command would (a mode of `off` disables it).
    pub fn fail_command(&self, fail_point: FailCommand) -> Result<(), TestkitError> {
        if fail_point.commands().is_empty() && *fail_point.mode() != crate::FailPointMode::Off {
            return Err(TestkitError::InvalidFailPoint(
                "failCommands must name at least one command".into(),
            ));
        }
        lock(&self.shared.fail_points).configure(fail_point);
        Ok(())
    }

    /// Disables every fail point.
    pub fn clear_fail_points(&self) {
        lock(&self.shared.fail_points).clear();
    }

    /// The number of currently open client connections.
    pub fn connection_count(&self) -> i64 {
        super::Counters::get(&self.shared.counters.current_connections)
    }
}

fn election_error(e: ElectionError) -> TestkitError {
    TestkitError::Election(match e {
        ElectionError::UnknownMember(m) => format!("there is no member {m}"),
        ElectionError::NobodyToTakeOver => {
            "no electable secondary: a one-member replica set cannot step down".into()
        }
        ElectionError::PrimaryMissing => "there is no primary to step down".into(),
    })
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for member in lock(&self.running).iter().flatten() {
            member.abort();
        }
        if let Some(elections) = &self.elections {
            elections.abort();
        }
        if let Some(writer) = &self.noop_writer {
            writer.abort();
        }
    }
}
