//! The doctor's steps, in order; each returns a [`Check`] and leaves what later steps need in
//! the [`Diagnosis`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use keel_config::{KeelConfig, LoadOptions, Preset, Profile, Source};
use keel_core::redact::{redact_text, redact_uri};
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{
    ClientOptions, ConnectionString, HostInfo, ReadPreference, ReadPreferenceOptions,
    SelectionCriteria, ServerAddress, Tls,
};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::advice::{self, Finding};
use super::tls::{self, TlsError};
use super::{Check, DoctorArgs};

/// MongoDB's default port.
const DEFAULT_PORT: u16 = 27017;

/// The network steps, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Resolve SRV records and host names.
    Dns,
    /// Open a TCP connection to each host.
    Tcp,
    /// Run a TLS handshake, when the connection uses TLS.
    Tls,
    /// The MongoDB `hello` handshake on one server.
    Handshake,
    /// Authentication, or whether the server needs it.
    Auth,
    /// Round-trip latency of `ping`.
    Ping,
    /// Discover the deployment the way the application will.
    Topology,
}

impl Step {
    /// Every network step, in order.
    pub(crate) const ALL: [Step; 7] = [
        Step::Dns,
        Step::Tcp,
        Step::Tls,
        Step::Handshake,
        Step::Auth,
        Step::Ping,
        Step::Topology,
    ];

    /// The name printed in the step's line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::Dns => "dns",
            Step::Tcp => "tcp",
            Step::Tls => "tls",
            Step::Handshake => "handshake",
            Step::Auth => "auth",
            Step::Ping => "ping",
            Step::Topology => "topology",
        }
    }
}

/// The configuration and connection string the doctor diagnoses.
pub(crate) struct Loaded {
    config: KeelConfig,
    connection: ConnectionString,
    /// The redacted connection string and where it came from, for the header.
    pub(crate) display: String,
}

/// One host of the connection string (or of the SRV answer).
#[derive(Clone, Debug)]
struct Target {
    host: String,
    port: u16,
    addrs: Vec<SocketAddr>,
    connected: Option<SocketAddr>,
}

impl Target {
    fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// What the steps found so far.
pub(crate) struct Diagnosis {
    loaded: Loaded,
    limit: Duration,
    options: Option<ClientOptions>,
    targets: Vec<Target>,
    tls: bool,
    hello: Option<Document>,
    /// A direct connection to the first reachable server, with the credentials.
    direct: Option<Client>,
    ping: Option<Duration>,
}

/// Step 1: load the configuration as Keel would and parse the connection string.
pub(crate) fn uri(args: &DoctorArgs) -> (Check, Option<Loaded>) {
    let mut options = LoadOptions::new().process_env();
    options.profile = args.profile;
    options.preset = args.preset;
    options.file.clone_from(&args.file);
    if let Some(uri) = &args.uri {
        options = options.set("uri", uri.clone());
    }
    let config = match KeelConfig::load(options) {
        Ok(config) => config,
        Err(errors) => {
            // `ConfigErrors` never holds a secret, so its text is safe to print as is.
            let text = errors.to_string();
            let (problem, fix) = match text.split_once("; fix: ") {
                Some((problem, fix)) => (format!("{problem}."), fix.to_owned()),
                None => (
                    text,
                    "correct the settings above; `keel config explain` shows each one and where \
                     it came from."
                        .to_owned(),
                ),
            };
            return (Check::fail("uri", Finding { problem, fix }), None);
        }
    };
    let shown = redact_uri(config.uri.expose());
    let source = match config.explain().row("uri").map(|row| row.source()) {
        Some(Source::Override) => "--uri".to_owned(),
        Some(Source::Env) => "KEEL_URI".to_owned(),
        Some(source) => source.to_string(),
        None => "unknown".to_owned(),
    };
    let connection = match ConnectionString::parse(config.uri.expose()) {
        Ok(connection) => connection,
        Err(error) => {
            let finding = Finding {
                problem: format!(
                    "the connection string {shown} cannot be parsed: {}.",
                    redact_text(&error.kind.to_string())
                ),
                fix: "write it as mongodb://user:password@host:27017/?options or \
                      mongodb+srv://user:password@cluster.example.net/, with special characters \
                      in the password percent-encoded (@ as %40, : as %3A, / as %2F)."
                    .to_owned(),
            };
            return (Check::fail("uri", finding), None);
        }
    };
    let mut check = Check::pass("uri", describe(&connection)).note(format!("from {source}"));
    if connection.credential.is_some() {
        check = check.note("credentials: given (user name and password hidden)");
    }
    if let Some(name) = &connection.replica_set {
        check = check.note(format!("replicaSet={name}"));
    }
    let display = format!(
        "{shown} (from {source}, profile {})",
        config.profile.as_str()
    );
    (
        check,
        Some(Loaded {
            config,
            connection,
            display,
        }),
    )
}

fn describe(connection: &ConnectionString) -> String {
    match &connection.host_info {
        HostInfo::DnsRecord(host) => {
            format!("mongodb+srv:// string for {host}: hosts come from DNS, TLS is on by default")
        }
        HostInfo::HostIdentifiers(hosts) => {
            let list: Vec<String> = hosts.iter().map(ToString::to_string).collect();
            let noun = if hosts.len() == 1 { "host" } else { "hosts" };
            format!(
                "mongodb:// string with {} {noun}: {}",
                hosts.len(),
                list.join(", ")
            )
        }
        _ => "mongodb:// string".to_owned(),
    }
}

impl Diagnosis {
    /// A diagnosis of `loaded`, each network step bounded by `limit`.
    pub(crate) fn new(loaded: Loaded, limit: Duration) -> Self {
        Self {
            loaded,
            limit,
            options: None,
            targets: Vec::new(),
            tls: false,
            hello: None,
            direct: None,
            ping: None,
        }
    }

    /// Runs one network step.
    pub(crate) async fn run(&mut self, step: Step) -> Check {
        match step {
            Step::Dns => self.dns().await,
            Step::Tcp => self.tcp().await,
            Step::Tls => self.tls().await,
            Step::Handshake => self.handshake().await,
            Step::Auth => self.auth().await,
            Step::Ping => self.ping().await,
            Step::Topology => self.topology().await,
        }
    }

    async fn dns(&mut self) -> Check {
        let srv = match &self.loaded.connection.host_info {
            HostInfo::DnsRecord(host) => Some(host.clone()),
            _ => None,
        };
        let started = Instant::now();
        // Parsing resolves the SRV and TXT records of a mongodb+srv:// string.
        let options =
            match tokio::time::timeout(self.limit, self.loaded.config.to_client_options()).await {
                Err(_) => {
                    let what = srv.as_deref().map_or_else(
                        || "the connection string".to_owned(),
                        |host| format!("the SRV record _mongodb._tcp.{host}"),
                    );
                    return Check::fail("dns", advice::dns_timeout(&what, self.limit));
                }
                Ok(Err(errors)) => {
                    let finding = match &srv {
                        Some(host) => {
                            // The driver's own message, without the configuration's wrapping.
                            let detail = ClientOptions::parse(self.loaded.config.uri.expose())
                                .await
                                .err()
                                .map_or_else(|| errors.to_string(), |e| e.kind.to_string());
                            advice::srv_failed(host, &detail)
                        }
                        None => Finding {
                            problem: errors.to_string(),
                            fix: "correct the connection string's options.".to_owned(),
                        },
                    };
                    return Check::fail("dns", finding);
                }
                Ok(Ok(options)) => options,
            };
        let srv_took = started.elapsed();
        let mut resolved = Vec::new();
        let mut failures = Vec::new();
        let mut notes = Vec::new();
        for address in &options.hosts {
            let ServerAddress::Tcp { host, port } = address else {
                notes.push(format!("{address} is a Unix socket: not checked over TCP"));
                continue;
            };
            let port = port.unwrap_or(DEFAULT_PORT);
            let target = |addrs| Target {
                host: host.clone(),
                port,
                addrs,
                connected: None,
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                resolved.push(target(vec![SocketAddr::new(ip, port)]));
                continue;
            }
            match tokio::time::timeout(self.limit, tokio::net::lookup_host((host.as_str(), port)))
                .await
            {
                Ok(Ok(addrs)) => resolved.push(target(addrs.collect())),
                Ok(Err(error)) => failures.push(advice::unresolvable(host, &error)),
                Err(_) => failures.push(advice::dns_timeout(host, self.limit)),
            }
        }
        self.tls = matches!(options.tls, Some(Tls::Enabled(_)));
        self.options = Some(options);
        let shown: Vec<String> = resolved
            .iter()
            .take(4)
            .map(|t| match t.addrs.first() {
                Some(addr) if addr.ip().to_string() != t.host => {
                    format!("{} → {}", t.host, addr.ip())
                }
                _ => format!("{} (an address)", t.host),
            })
            .collect();
        let mut check = match (resolved.is_empty(), failures.first()) {
            (true, Some(first)) => Check::fail("dns", first.clone()),
            (true, None) => Check::fail(
                "dns",
                Finding {
                    problem: "the connection string names no TCP host.".to_owned(),
                    fix: "give at least one host:port.".to_owned(),
                },
            ),
            (false, Some(first)) => Check::warn(
                "dns",
                Finding {
                    problem: format!(
                        "{} of {} hosts do not resolve; the others do ({}). First: {}",
                        failures.len(),
                        failures.len() + resolved.len(),
                        shown.join(", "),
                        first.problem
                    ),
                    fix: first.fix.clone(),
                },
            ),
            (false, None) => Check::pass("dns", shown.join(", ")),
        };
        if let Some(host) = srv {
            let hosts: Vec<String> = resolved.iter().map(Target::label).collect();
            check = check.note(format!(
                "SRV _mongodb._tcp.{host} → {} ({} ms)",
                hosts.join(", "),
                srv_took.as_millis()
            ));
        }
        for note in notes {
            check = check.note(note);
        }
        self.targets = resolved;
        check
    }

    async fn tcp(&mut self) -> Check {
        let mut reached = Vec::new();
        let mut failures = Vec::new();
        for target in &mut self.targets {
            let mut last = None;
            for addr in target.addrs.clone() {
                let started = Instant::now();
                match tokio::time::timeout(self.limit, TcpStream::connect(addr)).await {
                    Ok(Ok(_stream)) => {
                        target.connected = Some(addr);
                        reached.push(format!(
                            "{} ({} ms)",
                            target.label(),
                            started.elapsed().as_millis()
                        ));
                        break;
                    }
                    Ok(Err(error)) => last = Some(advice::tcp_failed(&target.label(), &error)),
                    Err(_) => last = Some(advice::tcp_timeout(&target.label(), Some(self.limit))),
                }
            }
            if target.connected.is_none()
                && let Some(finding) = last
            {
                failures.push(finding);
            }
        }
        match (reached.is_empty(), failures.first()) {
            (true, Some(first)) => Check::fail("tcp", first.clone()),
            (true, None) => Check::skip("tcp", "no host to connect to"),
            (false, Some(first)) => Check::warn(
                "tcp",
                Finding {
                    problem: format!(
                        "connected to {}, but not to every host: {}",
                        reached.join(", "),
                        first.problem
                    ),
                    fix: first.fix.clone(),
                },
            ),
            (false, None) => Check::pass("tcp", format!("connected to {}", reached.join(", "))),
        }
    }

    fn first_reachable(&self) -> Option<&Target> {
        self.targets.iter().find(|t| t.connected.is_some())
    }

    async fn tls(&mut self) -> Check {
        let Some(options) = &self.options else {
            return Check::skip("tls", "no driver options");
        };
        let Some(target) = self.first_reachable().cloned() else {
            return Check::skip("tls", "no reachable host");
        };
        let tls_options = match &options.tls {
            Some(Tls::Enabled(tls_options)) => tls_options.clone(),
            _ => {
                if target.host.ends_with(".mongodb.net") {
                    return Check::fail(
                        "tls",
                        Finding {
                            problem: "MongoDB Atlas accepts only TLS connections, and this \
                                      connection string turns TLS off."
                                .to_owned(),
                            fix: "remove tls=false (or ssl=false), or use the mongodb+srv:// \
                                  string Atlas gives."
                                .to_owned(),
                        },
                    );
                }
                let check = Check::pass("tls", "off: the connection string does not ask for TLS");
                let local = self
                    .targets
                    .iter()
                    .flat_map(|t| &t.addrs)
                    .all(|addr| addr.ip().is_loopback());
                return if local {
                    check
                } else {
                    check.note(
                        "traffic is not encrypted: fine on a private network, not across the \
                         internet (add tls=true when the server supports it)",
                    )
                };
            }
        };
        if tls_options.allow_invalid_certificates == Some(true) {
            return Check::warn(
                "tls",
                Finding {
                    problem: "certificate checks are off (tlsAllowInvalidCertificates=true): \
                              traffic is encrypted, but anyone in the path could pose as the \
                              server."
                        .to_owned(),
                    fix: "remove tlsAllowInvalidCertificates and, for a private CA, give it with \
                          tlsCAFile=/path/to/ca.pem."
                        .to_owned(),
                },
            );
        }
        let Some(addr) = target.connected else {
            return Check::skip("tls", "no reachable host");
        };
        match tls::handshake(&target.host, addr, &tls_options, self.limit).await {
            Ok(negotiated) => {
                let client = if negotiated.client_certificate {
                    ", client certificate offered"
                } else {
                    ""
                };
                Check::pass(
                    "tls",
                    format!(
                        "{} with {}: certificate verified for {} ({}{client})",
                        negotiated.version,
                        target.label(),
                        target.host,
                        negotiated.cipher
                    ),
                )
            }
            Err(TlsError::Setup(problem)) => Check::fail(
                "tls",
                Finding {
                    problem: format!("{problem}."),
                    fix: "correct the path or the file in the connection string's tls options; \
                          the driver reads the same file."
                        .to_owned(),
                },
            ),
            Err(TlsError::Timeout) => Check::fail(
                "tls",
                Finding {
                    problem: format!(
                        "{} did not answer the TLS handshake within {} s: the server most likely \
                         does not use TLS (a plain MongoDB server waits silently for more bytes).",
                        target.label(),
                        self.limit.as_secs()
                    ),
                    fix: "remove tls=true (or ssl=true) from the connection string, or enable TLS \
                          on the server; if it does use TLS, check that nothing in between holds \
                          the connection."
                        .to_owned(),
                },
            ),
            Err(TlsError::Handshake(error)) => Check::fail(
                "tls",
                advice::tls_failed(&target.label(), &target.host, &error),
            ),
        }
    }

    /// Driver options for a direct connection to `target`, with or without the credentials.
    fn direct_options(&self, target: &Target, credentials: bool) -> Option<ClientOptions> {
        let mut options = self.options.clone()?;
        options.hosts = vec![ServerAddress::Tcp {
            host: target.host.clone(),
            port: Some(target.port),
        }];
        options.direct_connection = Some(true);
        // The doctor compares the set name itself, to say what differs.
        options.repl_set_name = None;
        if !credentials {
            options.credential = None;
        }
        options.server_selection_timeout = Some(self.limit);
        options.connect_timeout = Some(self.limit);
        options.app_name = Some("keel-doctor".to_owned());
        options.min_pool_size = Some(0);
        Some(options)
    }

    async fn command(&self, client: &Client, command: Document) -> Result<Document, String> {
        let database = client.database("admin");
        let run = database.run_command(command);
        match tokio::time::timeout(self.limit + Duration::from_secs(1), run).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(redact_text(&error.kind.to_string())),
            Err(_) => Err(format!("timed out after {} s", self.limit.as_secs())),
        }
    }

    async fn handshake(&mut self) -> Check {
        let Some(target) = self.first_reachable().cloned() else {
            return Check::skip("handshake", "no reachable host");
        };
        let Some(options) = self.direct_options(&target, false) else {
            return Check::skip("handshake", "no driver options");
        };
        let client = match Client::with_options(options) {
            Ok(client) => client,
            Err(error) => {
                return Check::fail(
                    "handshake",
                    advice::driver_failed(
                        "handshake",
                        &target.label(),
                        &error.kind.to_string(),
                        self.tls,
                    ),
                );
            }
        };
        let started = Instant::now();
        let hello = self.command(&client, doc! { "hello": 1 }).await;
        let took = started.elapsed();
        let version = self
            .command(&client, doc! { "buildInfo": 1 })
            .await
            .ok()
            .and_then(|info| info.get_str("version").ok().map(str::to_owned));
        client.shutdown().immediate(true).await;
        let hello = match hello {
            Ok(hello) => hello,
            Err(error) => {
                return Check::fail(
                    "handshake",
                    advice::driver_failed("handshake", &target.label(), &error, self.tls),
                );
            }
        };
        let role = role(&hello);
        let version = version.map_or_else(|| "MongoDB".to_owned(), |v| format!("MongoDB {v}"));
        let mut check = Check::pass(
            "handshake",
            format!(
                "{} answers: {version}, {role} ({} ms)",
                target.label(),
                took.as_millis()
            ),
        );
        let wanted = self.loaded.connection.replica_set.clone();
        let actual = hello.get_str("setName").ok().map(str::to_owned);
        match (wanted, actual) {
            (Some(wanted), Some(actual)) if wanted != actual => {
                check = Check::fail(
                    "handshake",
                    Finding {
                        problem: format!(
                            "{} belongs to replica set '{actual}', but the connection string asks \
                             for replicaSet={wanted}: the driver would ignore the server.",
                            target.label()
                        ),
                        fix: format!("set replicaSet={actual} in the connection string."),
                    },
                );
            }
            (Some(wanted), None) if hello.get_str("msg").ok() != Some("isdbgrid") => {
                check = Check::fail(
                    "handshake",
                    Finding {
                        problem: format!(
                            "the connection string asks for replicaSet={wanted}, but {} is a \
                             standalone server: the driver would never find a member.",
                            target.label()
                        ),
                        fix: "remove replicaSet= from the connection string, or start the server \
                              as a replica set member (--replSet) and run rs.initiate()."
                            .to_owned(),
                    },
                );
            }
            _ => {}
        }
        self.hello = Some(hello);
        check
    }

    async fn auth(&mut self) -> Check {
        let Some(target) = self.first_reachable().cloned() else {
            return Check::skip("auth", "no reachable host");
        };
        let has_credentials = self
            .options
            .as_ref()
            .is_some_and(|o| o.credential.is_some());
        let Some(options) = self.direct_options(&target, true) else {
            return Check::skip("auth", "no driver options");
        };
        let client = match Client::with_options(options) {
            Ok(client) => client,
            Err(error) => {
                return Check::fail(
                    "auth",
                    advice::driver_failed(
                        "authentication",
                        &target.label(),
                        &error.kind.to_string(),
                        self.tls,
                    ),
                );
            }
        };
        let check = if has_credentials {
            match self.command(&client, doc! { "connectionStatus": 1 }).await {
                Ok(status) => {
                    let users = status
                        .get_document("authInfo")
                        .ok()
                        .and_then(|info| info.get_array("authenticatedUsers").ok())
                        .map_or(0, Vec::len);
                    let source = self
                        .options
                        .as_ref()
                        .and_then(|o| o.credential.as_ref())
                        .and_then(|c| c.source.clone())
                        .unwrap_or_else(|| "the default database".to_owned());
                    if users > 0 {
                        Check::pass(
                            "auth",
                            format!("authenticated (user name hidden) against {source}"),
                        )
                    } else {
                        Check::fail(
                            "auth",
                            Finding {
                                problem: "the server accepted the connection but reports no \
                                          authenticated user."
                                    .to_owned(),
                                fix: "check authSource and authMechanism in the connection string."
                                    .to_owned(),
                            },
                        )
                    }
                }
                Err(error) => Check::fail(
                    "auth",
                    advice::driver_failed("authentication", &target.label(), &error, self.tls),
                ),
            }
        } else {
            match self
                .command(&client, doc! { "listDatabases": 1, "nameOnly": true })
                .await
            {
                Ok(_) => {
                    let local = target.connected.is_some_and(|a| a.ip().is_loopback());
                    if local {
                        Check::pass(
                            "auth",
                            "no credentials given, and this local server does not ask for them",
                        )
                    } else {
                        Check::warn(
                            "auth",
                            Finding {
                                problem: format!(
                                    "{} serves clients without credentials, and it is reachable \
                                     over the network.",
                                    target.label()
                                ),
                                fix: "enable authentication on the server \
                                      (security.authorization: enabled) and connect with a user."
                                    .to_owned(),
                            },
                        )
                    }
                }
                Err(error) => Check::fail(
                    "auth",
                    advice::driver_failed("check", &target.label(), &error, self.tls),
                ),
            }
        };
        // Later steps use this connection only if it works.
        if check.status == super::Status::Fail {
            client.shutdown().immediate(true).await;
        } else {
            self.direct = Some(client);
        }
        check
    }

    async fn ping(&mut self) -> Check {
        let Some(client) = self.direct.clone() else {
            return Check::skip("ping", "no connection");
        };
        let label = self
            .first_reachable()
            .map_or_else(String::new, Target::label);
        let mut samples = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            if let Err(error) = self.command(&client, doc! { "ping": 1 }).await {
                return Check::fail(
                    "ping",
                    advice::driver_failed("ping", &label, &error, self.tls),
                );
            }
            samples.push(started.elapsed());
        }
        samples.sort_unstable();
        let (min, median, max) = (samples[0], samples[2], samples[4]);
        self.ping = Some(median);
        let summary = format!(
            "5 pings to {label}: median {} (min {}, max {})",
            millis(median),
            millis(min),
            millis(max)
        );
        if median > Duration::from_millis(50) {
            Check::warn(
                "ping",
                Finding {
                    problem: format!(
                        "{summary}: every call pays this round trip, several times for a query \
                         that fetches more batches."
                    ),
                    fix: "run the application in the same region (or zone) as the database."
                        .to_owned(),
                },
            )
        } else {
            Check::pass("ping", summary)
        }
    }

    async fn topology(&mut self) -> Check {
        let Some(mut options) = self.options.clone() else {
            return Check::skip("topology", "no driver options");
        };
        options.server_selection_timeout = Some(self.limit);
        options.connect_timeout = Some(self.limit);
        options.app_name = Some("keel-doctor".to_owned());
        options.min_pool_size = Some(0);
        let hello = self.hello.clone().unwrap_or_default();
        // The driver connects to the members under the names the replica set gives them, not
        // the ones in the connection string: check those resolve here.
        let mut unresolvable = Vec::new();
        let direct = options.direct_connection == Some(true);
        if !direct {
            for member in members(&hello) {
                let (host, port) = split_host(&member);
                if host.parse::<IpAddr>().is_ok() {
                    continue;
                }
                let lookup = tokio::net::lookup_host((host, port));
                if !matches!(tokio::time::timeout(self.limit, lookup).await, Ok(Ok(_))) {
                    unresolvable.push(member);
                }
            }
        }
        let discovered = match Client::with_options(options) {
            Ok(client) => {
                let criteria =
                    SelectionCriteria::ReadPreference(ReadPreference::PrimaryPreferred {
                        options: Some(ReadPreferenceOptions::default()),
                    });
                let database = client.database("admin");
                let run = database
                    .run_command(doc! { "hello": 1 })
                    .selection_criteria(criteria);
                let result =
                    match tokio::time::timeout(self.limit + Duration::from_secs(1), run).await {
                        Ok(Ok(reply)) => Ok(reply),
                        Ok(Err(error)) => Err(redact_text(&error.kind.to_string())),
                        Err(_) => Err(format!("timed out after {} s", self.limit.as_secs())),
                    };
                client.shutdown().immediate(true).await;
                result
            }
            Err(error) => Err(redact_text(&error.kind.to_string())),
        };
        let unresolvable_finding = |list: &[String]| Finding {
            problem: format!(
                "the replica set calls its members {}, names this machine cannot resolve; the \
                 driver connects to those names, not the ones in the connection string.",
                list.join(", ")
            ),
            fix: "make those names resolvable here (DNS or /etc/hosts), or reconfigure the \
                  replica set with reachable names; to talk to the one server you named, add \
                  directConnection=true."
                .to_owned(),
        };
        let reply = match discovered {
            Ok(reply) => reply,
            Err(error) if !unresolvable.is_empty() => {
                return Check::fail("topology", unresolvable_finding(&unresolvable)).note(error);
            }
            Err(error) => {
                let label = self
                    .first_reachable()
                    .map_or_else(String::new, Target::label);
                return Check::fail(
                    "topology",
                    advice::driver_failed("topology discovery", &label, &error, self.tls),
                );
            }
        };
        let summary = describe_topology(&reply);
        if !unresolvable.is_empty() {
            return Check::warn("topology", unresolvable_finding(&unresolvable)).note(summary);
        }
        if reply.get_str("setName").is_ok() && reply.get_str("primary").is_err() {
            return Check::warn(
                "topology",
                Finding {
                    problem: format!(
                        "{summary}: no primary right now, so writes fail until one is elected."
                    ),
                    fix: "wait for the election, or check that a majority of members is up and \
                          can reach each other (rs.status())."
                        .to_owned(),
                },
            );
        }
        let check = Check::pass("topology", summary);
        if reply.get_str("setName").is_err() && reply.get_str("msg").ok() != Some("isdbgrid") {
            check.note(
                "a standalone server has no failover: Keel's retries ride out a restart, but \
                 there is no second copy of the data",
            )
        } else {
            check
        }
    }
}

/// Step 9 (no network needed): the pool and timeout settings against the profile.
pub(crate) async fn pool(diagnosis: &Diagnosis) -> Check {
    let config = &diagnosis.loaded.config;
    let explain = config.explain();
    let shown = |field: &str| {
        explain.row(field).map_or_else(String::new, |row| {
            format!("{field} {} ({})", row.value(), row.source())
        })
    };
    let summary = [
        shown("pool.max_size"),
        shown("pool.min_size"),
        shown("timeouts.checkout_wait"),
        shown("timeouts.server_selection"),
    ]
    .join(", ");
    let mut findings = Vec::new();
    let local = !diagnosis.targets.is_empty()
        && diagnosis
            .targets
            .iter()
            .flat_map(|t| &t.addrs)
            .all(|addr| addr.ip().is_loopback());
    if local && config.profile == Profile::Production {
        findings.push(Finding {
            problem: "the production profile is in force for a server on this machine.".to_owned(),
            fix: "for local development use --profile development (or \
                  KEEL_PROFILE=development): shorter timeouts and a smaller pool."
                .to_owned(),
        });
    }
    if config.preset == Preset::Serverless && config.pool.min_size > 0 {
        findings.push(Finding {
            problem: format!(
                "pool.min_size is {} with the serverless preset: frozen instances would hold \
                 connections open.",
                config.pool.min_size
            ),
            fix: "set pool.min_size to 0 (KEEL_POOL_MIN_SIZE=0).".to_owned(),
        });
    }
    if let Some(ping) = diagnosis.ping
        && ping * 20 > config.timeouts.checkout_wait
    {
        findings.push(Finding {
            problem: format!(
                "timeouts.checkout_wait ({}) is less than 20 round trips ({} each): calls would \
                 be shed as overloaded under ordinary load.",
                keel_config::format_duration(config.timeouts.checkout_wait),
                millis(ping)
            ),
            fix: "raise timeouts.checkout_wait (KEEL_TIMEOUTS_CHECKOUT_WAIT).".to_owned(),
        });
    }
    let mut notes = Vec::new();
    if let Some(client) = &diagnosis.direct {
        match diagnosis.command(client, doc! { "serverStatus": 1 }).await {
            Ok(status) => {
                let available = status
                    .get_document("connections")
                    .ok()
                    .and_then(|c| c.get("available"))
                    .and_then(as_i64);
                if let Some(available) = available {
                    if i64::from(config.pool.max_size) > available {
                        findings.push(Finding {
                            problem: format!(
                                "pool.max_size is {}, but the server has only {available} \
                                 connections left: one instance of this application could \
                                 exhaust them.",
                                config.pool.max_size
                            ),
                            fix: "lower pool.max_size, or raise the server's connection limit \
                                  (net.maxIncomingConnections)."
                                .to_owned(),
                        });
                    } else {
                        notes.push(format!("the server has {available} connections available"));
                    }
                }
            }
            Err(_) => notes.push(
                "the server's connection limit could not be read (serverStatus needs the \
                 clusterMonitor role)"
                    .to_owned(),
            ),
        }
    }
    let mut check = match findings.first() {
        None => Check::pass(
            "pool",
            format!("{summary}: suit the {} profile", config.profile.as_str()),
        ),
        Some(first) => {
            let mut check = Check::warn("pool", first.clone()).note(summary);
            for more in &findings[1..] {
                check = check
                    .note(format!("also: {}", more.problem))
                    .note(format!("fix: {}", more.fix));
            }
            check
        }
    };
    for note in notes {
        check = check.note(note);
    }
    check
}

/// What kind of server a `hello` reply describes.
fn role(hello: &Document) -> String {
    if hello.get_str("msg").ok() == Some("isdbgrid") {
        return "a mongos router of a sharded cluster".to_owned();
    }
    let Ok(set) = hello.get_str("setName") else {
        return "a standalone server".to_owned();
    };
    let state = if hello.get_bool("isWritablePrimary").unwrap_or(false) {
        "primary"
    } else if hello.get_bool("secondary").unwrap_or(false) {
        "secondary"
    } else if hello.get_bool("arbiterOnly").unwrap_or(false) {
        "arbiter"
    } else {
        "not yet primary or secondary"
    };
    format!("{state} of replica set '{set}'")
}

/// The members a replica set member lists (hosts and passives).
fn members(hello: &Document) -> Vec<String> {
    ["hosts", "passives"]
        .iter()
        .filter_map(|field| hello.get_array(field).ok())
        .flatten()
        .filter_map(|member| member.as_str().map(str::to_owned))
        .collect()
}

fn describe_topology(reply: &Document) -> String {
    if reply.get_str("msg").ok() == Some("isdbgrid") {
        return "sharded cluster: the driver talks to mongos routers".to_owned();
    }
    let Ok(set) = reply.get_str("setName") else {
        return "standalone server".to_owned();
    };
    let all = members(reply);
    let primary = reply.get_str("primary").ok();
    let others: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|m| Some(*m) != primary)
        .collect();
    match primary {
        Some(primary) => format!(
            "replica set '{set}': primary {primary}, {} other member{} ({})",
            others.len(),
            if others.len() == 1 { "" } else { "s" },
            others.join(", ")
        ),
        None => format!("replica set '{set}' with members {}", all.join(", ")),
    }
}

fn split_host(member: &str) -> (&str, u16) {
    match member.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
            host.trim_matches(['[', ']']),
            port.parse().unwrap_or(DEFAULT_PORT),
        ),
        _ => (member, DEFAULT_PORT),
    }
}

fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(n) => Some(*n as i64),
        _ => None,
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_topologies_in_words() {
        assert_eq!(
            role(&doc! { "isWritablePrimary": true }),
            "a standalone server"
        );
        assert_eq!(
            role(&doc! { "setName": "rs0", "isWritablePrimary": true }),
            "primary of replica set 'rs0'"
        );
        assert_eq!(
            role(&doc! { "msg": "isdbgrid" }),
            "a mongos router of a sharded cluster"
        );
        let set = doc! {
            "setName": "rs0",
            "primary": "a:1",
            "hosts": ["a:1", "b:1", "c:1"],
        };
        assert_eq!(
            describe_topology(&set),
            "replica set 'rs0': primary a:1, 2 other members (b:1, c:1)"
        );
        assert_eq!(members(&set).len(), 3);
    }

    #[test]
    fn member_names_split_into_host_and_port() {
        assert_eq!(split_host("mongo1:27018"), ("mongo1", 27018));
        assert_eq!(split_host("mongo1"), ("mongo1", 27017));
        assert_eq!(split_host("[::1]:27019"), ("::1", 27019));
    }
}
