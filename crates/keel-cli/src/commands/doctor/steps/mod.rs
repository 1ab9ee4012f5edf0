//! The doctor's steps, in order, one file each; each returns a [`Check`] and leaves what later
//! steps need in the [`Diagnosis`]. Failed driver calls are explained from their
//! `keel_core::Error` (class, code, the driver's error kind), never from their text.

mod auth;
mod dns;
mod handshake;
mod ping;
mod pool;
mod tcp;
mod tls;
mod topology;
mod uri;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keel_config::KeelConfig;
use keel_core::{Error, ErrorClass};
use mongodb::Client;
use mongodb::bson::Document;
use mongodb::event::EventHandler;
use mongodb::event::sdam::SdamEvent;
use mongodb::options::{ClientOptions, ConnectionString, ServerAddress};

use super::Check;

pub(crate) use pool::pool;
pub(crate) use uri::uri;

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
    /// The last error the driver's monitor saw on a server of the doctor's own clients: why a
    /// server selection timed out.
    server_error: ServerError,
}

/// Where the driver's server monitor leaves the last error it saw (SDAM's "server description
/// changed" event carries it), shared with the event handler of a client's options.
#[derive(Clone, Default)]
struct ServerError(Arc<Mutex<Option<mongodb::error::Error>>>);

impl ServerError {
    /// Makes `options` report server errors here, forgetting the previous client's.
    fn watch(&self, options: &mut ClientOptions) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let slot = Arc::clone(&self.0);
        options.sdam_event_handler = Some(EventHandler::callback(move |event: SdamEvent| {
            if let SdamEvent::ServerDescriptionChanged(changed) = event
                && let Some(error) = changed.new_description.error()
            {
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
            }
        }));
    }

    /// `error`, or when it is a server-selection timeout, the server error behind it.
    fn explain(&self, error: mongodb::error::Error) -> Error {
        let error = Error::from_driver(error);
        if error.class() != ErrorClass::ServerSelection {
            return error;
        }
        let cause = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        cause.map_or(error, Error::from_driver)
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
            server_error: ServerError::default(),
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

    fn first_reachable(&self) -> Option<&Target> {
        self.targets.iter().find(|t| t.connected.is_some())
    }

    /// Driver options for a direct connection to `target`, with or without the credentials.
    /// Server errors of the client built from them are recorded for [`Self::command`].
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
        self.server_error.watch(&mut options);
        Some(options)
    }

    /// Runs `command` on `admin`; a failure is classified, with the server error behind a
    /// server-selection timeout.
    async fn command(&self, client: &Client, command: Document) -> Result<Document, Error> {
        let database = client.database("admin");
        let run = database.run_command(command);
        match tokio::time::timeout(self.limit + Duration::from_secs(1), run).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(self.server_error.explain(error)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// The error of a call that did not finish within the step's limit.
    fn timed_out(&self) -> Error {
        Error::deadline_exceeded(format!("timed out after {} s", self.limit.as_secs()))
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}
