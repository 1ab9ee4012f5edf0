//! [`TestServerBuilder`]: the options of a [`TestServer`] (address, data directory, replica set,
//! oplog size, authentication, TLS), their validation, and starting the listeners.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Shared;
use super::listener::Running;
use super::replica_set::{DEFAULT_ELECTION_TIMEOUT, ReplicaSet};
use super::test_server::TestServer;
use super::uri::{CaFile, Credentials};
use crate::error::TestkitError;
use crate::net::bind_reusable;
use crate::storage::{ClusterClock, DEFAULT_OPLOG_SIZE, Storage};
use crate::tls::TlsIdentity;

/// mongod's limit on replica-set members.
const MAX_MEMBERS: usize = 50;

/// Options for [`TestServer`]; see [`TestServer::builder`].
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    bind: SocketAddr,
    data_dir: Option<PathBuf>,
    replica_set: Option<(String, usize)>,
    oplog_size: usize,
    credentials: Option<Credentials>,
    tls: Option<TlsIdentity>,
    election_timeout: Duration,
    replication_lags: Vec<(usize, Duration)>,
    noop_interval: Duration,
    transaction_lifetime_limit: Duration,
}
impl Default for TestServerBuilder {
    fn default() -> Self {
        // Loopback and an ephemeral port: tests never collide and never listen publicly.
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_dir: None,
            replica_set: None,
            oplog_size: DEFAULT_OPLOG_SIZE,
            credentials: None,
            tls: None,
            election_timeout: DEFAULT_ELECTION_TIMEOUT,
            replication_lags: Vec::new(),
            noop_interval: super::noop_writer::DEFAULT_NOOP_INTERVAL,
            transaction_lifetime_limit: super::transactions::DEFAULT_LIFETIME_LIMIT,
        }
    }
}

impl TestServerBuilder {
    /// The address to listen on (default `127.0.0.1:0`, an ephemeral port). For a replica set,
    /// member `i` listens on port `port + i` (every member on an ephemeral port with port 0).
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

    /// Runs as replica set `name` with `members` members (1 to 50) sharing one data set;
    /// member 0 starts as primary. See [`TestServer::replica_set`].
    #[must_use]
    pub fn replica_set(mut self, name: impl Into<String>, members: usize) -> Self {
        self.replica_set = Some((name.into(), members));
        self
    }

    /// How long a replica set's secondaries wait for a primary that stopped answering
    /// ([`TestServer::stop_member`], [`TestServer::pause_member`]) before electing another:
    /// mongod's `settings.electionTimeoutMillis`, reported by `replSetGetConfig` (default
    /// 10 s). Tests use a short one to stay fast.
    #[must_use]
    pub fn election_timeout(mut self, timeout: Duration) -> Self {
        self.election_timeout = timeout;
        self
    }

    /// How long a replica set's primary waits with an idle oplog before it appends a no-op
    /// entry (`{op: "n", o: {msg: "periodic noop"}}`), which moves idle change streams'
    /// `postBatchResumeToken` and the end of the oplog window: mongod's
    /// `periodicNoopIntervalSecs` (default 10 s).
    #[must_use]
    pub fn periodic_noop_interval(mut self, interval: Duration) -> Self {
        self.noop_interval = interval;
        self
    }

    /// How long a multi-document transaction may stay open before the server aborts it
    /// (mongod's `transactionLifetimeLimitSeconds`, default 60 s): a client that dies inside a
    /// transaction holds its documents against other transactions' writes until then.
    #[must_use]
    pub fn transaction_lifetime_limit(mut self, limit: Duration) -> Self {
        self.transaction_lifetime_limit = limit;
        self
    }

    /// Opt-in replication lag: while member `member` is a secondary, it applies each write
    /// `lag` after the primary did, so reads it serves (`readPreference=secondary`) can be
    /// stale, and a write with `writeConcern: {w: "majority"}` (or `w: n`) waits until enough
    /// members have it — or fails with a `writeConcernError` 64 when its `wtimeout` expires
    /// first. Call once per lagging member; default: no lag.
    ///
    /// ```
    /// # #![allow(clippy::unwrap_used)]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use keel_testkit::TestServer;
    ///
    /// let rs = TestServer::builder()
    ///     .replica_set("rs0", 3)
    ///     .replication_lag(1, Duration::from_secs(30))
    ///     .replication_lag(2, Duration::from_secs(30))
    ///     .start()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn replication_lag(mut self, member: usize, lag: Duration) -> Self {
        self.replication_lags.retain(|(m, _)| *m != member);
        self.replication_lags.push((member, lag));
        self
    }

    /// How many changes the oplog keeps for change streams (replica sets; default 10 000). A
    /// stream resuming from before the oldest kept change fails with `ChangeStreamHistoryLost`
    /// (286) instead of silently skipping changes.
    #[must_use]
    pub fn oplog_size(mut self, entries: usize) -> Self {
        self.oplog_size = entries;
        self
    }

    /// Requires SCRAM authentication (SCRAM-SHA-256 and SCRAM-SHA-1) as user `user` in the
    /// `admin` database. Unauthenticated connections may only run the handshake, `saslStart`,
    /// `saslContinue`, `ping`, `buildInfo` and `endSessions`; everything else gets
    /// `Unauthorized` (13), and a wrong password `AuthenticationFailed` (18).
    /// [`TestServer::uri`] then includes the credentials. The password is never printed.
    ///
    /// ```
    /// # #![allow(clippy::unwrap_used)]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel_testkit::TestServer;
    ///
    /// let server = TestServer::builder().auth("app", "s3cret").start().await?;
    /// let client = mongodb::Client::with_uri_str(server.uri()).await?; // user:password@…
    /// client.database("app").run_command(mongodb::bson::doc! {"ping": 1}).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Requires TLS on every connection, with this certificate and key (rustls). A client that
    /// does not speak TLS is disconnected during the handshake. With
    /// [`TlsIdentity::self_signed`], the server writes the CA to a temporary file
    /// ([`TestServer::tls_ca_file`]) and [`TestServer::uri`] adds `tls=true&tlsCAFile=…`.
    ///
    /// ```
    /// # #![allow(clippy::unwrap_used)]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel_testkit::{TestServer, TlsIdentity};
    ///
    /// let server = TestServer::builder().tls(TlsIdentity::self_signed()?).start().await?;
    /// assert!(server.uri().contains("tls=true&tlsCAFile="));
    /// let client = mongodb::Client::with_uri_str(server.uri()).await?;
    /// client.database("app").run_command(mongodb::bson::doc! {"ping": 1}).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    fn validate(&self) -> Result<(), TestkitError> {
        if let Some(c) = &self.credentials
            && c.user.is_empty()
        {
            return Err(TestkitError::InvalidConfig(
                "the user name must not be empty".into(),
            ));
        }
        if self.election_timeout.is_zero() {
            return Err(TestkitError::InvalidConfig(
                "the election timeout must be longer than zero".into(),
            ));
        }
        if self.noop_interval.is_zero() {
            // noop_writer.cpp: "write interval must be positive".
            return Err(TestkitError::InvalidConfig(
                "the periodic no-op interval must be longer than zero".into(),
            ));
        }
        if self.transaction_lifetime_limit.is_zero() {
            return Err(TestkitError::InvalidConfig(
                "the transaction lifetime limit must be longer than zero".into(),
            ));
        }
        let members = self.replica_set.as_ref().map(|(_, n)| *n);
        for (member, _) in &self.replication_lags {
            match members {
                None => {
                    return Err(TestkitError::InvalidConfig(
                        "replication lag needs a replica set (TestServerBuilder::replica_set)"
                            .into(),
                    ));
                }
                Some(n) if *member >= n => {
                    return Err(TestkitError::InvalidConfig(format!(
                        "replication lag for member {member}, but the set has {n} members"
                    )));
                }
                Some(_) => {}
            }
        }
        if self.oplog_size == 0 {
            return Err(TestkitError::InvalidConfig(
                "the oplog must hold at least one entry".into(),
            ));
        }
        if let Some((name, members)) = &self.replica_set {
            if name.is_empty() || name.contains(['/', ',', ' ', '?', '&', '=', '\0']) {
                return Err(TestkitError::InvalidConfig(format!(
                    "replica set name '{name}' must be non-empty and contain no '/', ',', spaces, \
                     '?', '&' or '='"
                )));
            }
            if !(1..=MAX_MEMBERS).contains(members) {
                return Err(TestkitError::InvalidConfig(format!(
                    "a replica set has 1 to {MAX_MEMBERS} members, not {members}"
                )));
            }
        }
        Ok(())
    }

    /// Starts the server; it accepts connections when this returns.
    pub async fn start(self) -> Result<TestServer, TestkitError> {
        self.validate()?;
        let mut storage = match &self.data_dir {
            Some(dir) => Storage::open(dir)?,
            None => Storage::default(),
        };
        let members = self.replica_set.as_ref().map_or(1, |(_, n)| *n);
        let mut listeners = Vec::with_capacity(members);
        let mut addrs = Vec::with_capacity(members);
        for i in 0..members {
            let mut bind = self.bind;
            if bind.port() != 0 {
                let port = u16::try_from(usize::from(bind.port()) + i).map_err(|_| {
                    TestkitError::InvalidConfig(format!(
                        "member {i} would need a port above 65535 (base port {})",
                        self.bind.port()
                    ))
                })?;
                bind.set_port(port);
            }
            let listener = bind_reusable(bind)?;
            let addr = listener
                .local_addr()
                .map_err(|source| TestkitError::Bind { addr: bind, source })?;
            listeners.push(listener);
            addrs.push(addr);
        }
        let clock = Arc::new(ClusterClock::default());
        let replica_set = self.replica_set.map(|(name, _)| {
            storage.enable_oplog(self.oplog_size, Arc::clone(&clock));
            ReplicaSet::with_election_timeout(
                name,
                addrs.iter().map(ToString::to_string).collect(),
                self.election_timeout,
            )
        });
        let users = self
            .credentials
            .as_ref()
            .map(|c| crate::auth::Users::new(&c.user, &c.password));
        let acceptor = self.tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
        let ca_file = match self.tls.as_ref().and_then(TlsIdentity::ca_pem) {
            Some(pem) => Some(CaFile::write(pem)?),
            None => None,
        };
        let replication = self
            .replication_lags
            .iter()
            .any(|(_, lag)| !lag.is_zero())
            .then(|| {
                let mut lags = vec![Duration::ZERO; members];
                for (member, lag) in &self.replication_lags {
                    lags[*member] = *lag;
                }
                super::replication::Replication::new(lags, &storage, clock.now())
            });
        let mut shared = Shared::new(storage, replica_set, users, acceptor, clock);
        shared.replication = replication;
        shared.transactions = std::sync::Mutex::new(
            super::transactions::Transactions::with_lifetime_limit(self.transaction_lifetime_limit),
        );
        let shared = Arc::new(shared);
        let running = listeners
            .into_iter()
            .enumerate()
            .map(|(member, l)| Some(Running::spawn(Arc::clone(&shared), l, member)))
            .collect();
        let elections = super::election::spawn(&shared);
        let noop_writer = super::noop_writer::spawn(&shared, self.noop_interval);
        Ok(TestServer {
            elections,
            noop_writer,
            shared,
            ca_file,
            credentials: self.credentials,
            addrs,
            data_dir: self.data_dir,
            running: Mutex::new(running),
            lifecycle: tokio::sync::Mutex::new(()),
        })
    }
}
