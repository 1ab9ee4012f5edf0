//! The managed client: connect with validation, state, pool metrics, reset and graceful shutdown.

use std::{
    sync::{
        Arc, Mutex, RwLock, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use keel_core::{Error, ErrorClass, OperationKind};
use mongodb::{
    Client,
    bson::{Document, doc},
    event::{EventHandler, cmap::CmapEvent, sdam::SdamEvent},
    options::ClientOptions,
};
use tokio::{
    sync::{Notify, Semaphore, watch},
    time::Instant,
};

use crate::{
    ConnectionState, ManagedSettings, PoolMetrics, PoolStats,
    in_flight::{InFlight, InFlightGuard},
    state::{Signal, StateMachine},
    topology,
    waiting::{self, WaitLimits},
};

/// A MongoDB client that Keel keeps an eye on.
///
/// Cheap to clone: clones share the driver client, the state and the metrics.
///
/// ```no_run
/// # async fn run() -> Result<(), keel_core::Error> {
/// use keel_pool_core::{ManagedClient, ManagedSettings, ConnectionState};
/// let options = mongodb::options::ClientOptions::parse("mongodb://127.0.0.1:27017").await?;
/// let client = ManagedClient::connect_with(options, ManagedSettings::default()).await?;
/// assert_eq!(client.state(), ConnectionState::Connected);
/// let report = client.shutdown().await;
/// assert!(!report.forced);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ManagedClient {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    client: RwLock<Client>,
    // Grows by one, under the client's write lock, each time reset() replaces the client.
    generation: AtomicU64,
    options: ClientOptions,
    settings: ManagedSettings,
    state: Arc<StateMachine>,
    metrics: Arc<PoolMetrics>,
    in_flight: Arc<InFlight>,
    reconnect_queue: Semaphore,
    closing: AtomicBool,
    force: Notify,
    last_reset: Mutex<Option<Instant>>,
}

/// What a graceful shutdown did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Operations still running when the driver client was shut down (0 unless forced or past
    /// the grace period).
    pub abandoned: usize,
    /// Whether the wait for in-flight operations was cut short (second signal or grace period).
    pub forced: bool,
}

/// Why `reset()` did not replace the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResetRefused {
    /// A reset happened less than `reset_min_interval` ago.
    #[error("a reset happened too recently; the next one is allowed in {retry_after:?}")]
    TooSoon {
        /// When the next reset is allowed.
        retry_after: Duration,
    },
    /// The client is shutting down.
    #[error("the client is shutting down")]
    ShuttingDown,
}

impl ManagedClient {
    /// Connects with driver options and Keel settings: builds the driver client, then (unless
    /// `lazy_connect`) validates it with `hello` + `ping` (and `connectionStatus` when
    /// credentials are set), retrying with backoff up to `connect_attempts` times.
    ///
    /// Fails with a classified, redacted [`Error`] that says how many attempts were made.
    pub async fn connect_with(
        mut options: ClientOptions,
        settings: ManagedSettings,
    ) -> Result<Self, Error> {
        let state = Arc::new(StateMachine::new());
        let metrics = Arc::new(PoolMetrics::default());
        options.sdam_event_handler = Some(sdam_handler(Arc::clone(&state)));
        options.cmap_event_handler = Some(cmap_handler(Arc::clone(&state), Arc::clone(&metrics)));
        let client = Client::with_options(options.clone()).map_err(Error::from)?;
        let shared = Arc::new(Shared {
            client: RwLock::new(client),
            generation: AtomicU64::new(0),
            options,
            reconnect_queue: Semaphore::new(settings.reconnect_queue),
            settings,
            state,
            metrics,
            in_flight: Arc::new(InFlight::default()),
            closing: AtomicBool::new(false),
            force: Notify::new(),
            last_reset: Mutex::new(None),
        });
        let managed = Self { shared };
        if !managed.shared.settings.lazy_connect
            && let Err(err) = managed.validate().await
        {
            managed.current().shutdown().immediate(true).await;
            return Err(err);
        }
        tokio::spawn(reconnect_probe(Arc::downgrade(&managed.shared)));
        tokio::spawn(waiting::cut_at_grace(
            Arc::downgrade(&managed.shared.state),
            managed.shared.settings.outage_grace,
        ));
        Ok(managed)
    }

    async fn validate(&self) -> Result<(), Error> {
        let settings = &self.shared.settings;
        let attempts = settings.connect_attempts.max(1);
        let mut attempt = 1;
        loop {
            tokio::time::sleep(settings.connect_delay(attempt)).await;
            match validate_once(&self.current(), self.shared.options.credential.is_some()).await {
                Ok(()) => {
                    self.shared.state.apply(Signal::Validated);
                    tracing::info!(attempt, "keel connection validated");
                    return Ok(());
                }
                Err(err) if !err.is_retryable(OperationKind::Read) => {
                    tracing::error!(attempt, error = %err, "keel connection validation failed");
                    return Err(err.with_attempts(attempt, "not retryable"));
                }
                Err(err) if attempt >= attempts => {
                    tracing::error!(attempt, error = %err, "keel connection validation failed");
                    return Err(err.with_attempts(attempt, "max attempts reached"));
                }
                Err(err) => {
                    tracing::warn!(attempt, error = %err, "keel connection validation failed; retrying");
                    attempt += 1;
                }
            }
        }
    }

    /// The current driver client (replaced by [`reset`](Self::reset)).
    pub fn current(&self) -> Client {
        self.shared.current()
    }

    /// The current driver client with its generation, read together.
    ///
    /// The generation starts at 0 and grows by one each time [`reset`](Self::reset) replaces
    /// the client, so a handle derived from the client (a database, a collection) can be kept
    /// and rebuilt only when [`generation`](Self::generation) moves on.
    ///
    /// ```no_run
    /// # async fn run(client: keel_pool_core::ManagedClient) {
    /// let (driver, generation) = client.current_with_generation();
    /// let items = driver.database("app").collection::<mongodb::bson::Document>("items");
    /// // ... later: still the same client?
    /// let still_valid = client.generation() == generation;
    /// # }
    /// ```
    pub fn current_with_generation(&self) -> (Client, u64) {
        let client = self
            .shared
            .client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            client.clone(),
            self.shared.generation.load(Ordering::Acquire),
        )
    }

    /// How many times [`reset`](Self::reset) has replaced the driver client.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The current connection state.
    pub fn state(&self) -> ConnectionState {
        self.shared.state.current()
    }

    /// A receiver that sees every state change.
    pub fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
    }

    /// Pool numbers from the driver's CMAP events.
    pub fn pool_stats(&self) -> PoolStats {
        self.shared.metrics.snapshot()
    }

    /// Operations running now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.count()
    }

    /// The Keel settings in force.
    pub fn settings(&self) -> &ManagedSettings {
        &self.shared.settings
    }

    /// Replaces the driver client (and so its pools) with a fresh one built from the same
    /// options. Operations already running keep the old client and finish (or fail with a
    /// classified error); the old client shuts down once they have.
    ///
    /// Refused within `reset_min_interval` of the previous reset, so a flapping database cannot
    /// cause a reset storm.
    pub fn reset(&self) -> Result<(), ResetRefused> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(ResetRefused::ShuttingDown);
        }
        {
            let mut last = self
                .shared
                .last_reset
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            if let Some(previous) = *last {
                let allowed_at = previous + self.shared.settings.reset_min_interval;
                if now < allowed_at {
                    return Err(ResetRefused::TooSoon {
                        retry_after: allowed_at - now,
                    });
                }
            }
            *last = Some(now);
        }
        let fresh = Client::with_options(self.shared.options.clone()).map_err(|err| {
            tracing::error!(error = %Error::from(err), "keel reset could not build a client");
            ResetRefused::ShuttingDown
        })?;
        let old = {
            let mut guard = self
                .shared
                .client
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
            std::mem::replace(&mut *guard, fresh)
        };
        metrics::counter!("keel_pool_resets_total").increment(1);
        tracing::warn!("keel replaced the driver client (reset)");
        // `shutdown()` waits for the old client's in-use sessions and cursors, so in-flight
        // operations finish first.
        tokio::spawn(async move { old.shutdown().await });
        Ok(())
    }

    /// Graceful shutdown: stop admitting operations, wait for in-flight ones up to
    /// `shutdown_grace`, then shut the driver client down.
    ///
    /// Calling it again while the first call waits forces the shutdown at once.
    pub async fn shutdown(&self) -> ShutdownReport {
        if self.shared.closing.swap(true, Ordering::AcqRel) {
            // Second signal: cut the wait short, then wait for the first call to finish.
            // `notify_one` keeps the signal if the first call is not waiting yet.
            self.shared.force.notify_one();
            let mut state = self.subscribe();
            let _ = state.wait_for(|s| *s == ConnectionState::Closed).await;
            return ShutdownReport {
                abandoned: 0,
                forced: true,
            };
        }
        tracing::info!(in_flight = self.in_flight(), "keel shutting down");
        let grace = self.shared.settings.shutdown_grace;
        let forced = tokio::select! {
            () = self.shared.in_flight.drained() => false,
            () = self.shared.force.notified() => true,
            () = tokio::time::sleep(grace) => true,
        };
        let abandoned = self.in_flight();
        let driver = self.current();
        if forced {
            // The driver's shutdown still waits for connections checked out by abandoned
            // operations; a forced shutdown must not, so it finishes in the background.
            tokio::spawn(async move { driver.shutdown().immediate(true).await });
        } else {
            driver.shutdown().await;
        }
        self.shared.state.apply(Signal::Closed);
        tracing::info!(abandoned, forced, "keel shut down");
        ShutdownReport { abandoned, forced }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Shared {
    pub(crate) fn current(&self) -> Client {
        self.client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Admits one operation, or refuses it while shutting down.
    pub(crate) fn admit(&self) -> Result<InFlightGuard, Error> {
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::shutting_down());
        }
        Ok(self.in_flight.enter())
    }

    /// Whether an operation can start now, without waiting for the database.
    pub(crate) fn can_serve(&self) -> bool {
        self.state.current().can_serve()
    }

    /// Waits, in the bounded reconnect queue, until a server can be reached (see
    /// [`waiting::until_serving`] for how long).
    pub(crate) async fn until_serving(&self, deadline: Option<Instant>) -> Result<(), Error> {
        match self.state.current() {
            ConnectionState::Closed => return Err(Error::shutting_down()),
            state if state.can_serve() => return Ok(()),
            _ => {}
        }
        let limits = WaitLimits {
            election_wait: self.settings.reconnect_wait,
            outage_grace: self.settings.outage_grace,
        };
        // A call of an outage whose grace has passed fails without taking a place in the queue.
        if let Some(since) = self.state.unreachable_since()
            && Instant::now() >= since + limits.outage_grace
        {
            return waiting::until_serving(&self.state, limits, deadline).await;
        }
        let Ok(_place) = self.reconnect_queue.try_acquire() else {
            return Err(Error::overloaded(
                format!(
                    "the reconnect queue is full ({} requests wait for the database)",
                    self.settings.reconnect_queue
                ),
                Some(self.settings.probe_interval),
            ));
        };
        waiting::until_serving(&self.state, limits, deadline).await
    }

    /// A future that completes when an outage has lasted the grace (see
    /// [`waiting::cut_at_grace`]); an attempt with the driver waits on it beside the driver.
    pub(crate) fn outage_cut(&self) -> tokio::sync::futures::OwnedNotified {
        self.state.outage_cut()
    }

    /// The error that ends an attempt with the driver, when the outage it is caught in has
    /// lasted the grace.
    pub(crate) fn in_flight_cut(&self) -> Option<Error> {
        waiting::in_flight_cut(&self.state, self.settings.outage_grace)
    }

    /// Runs an attempt on the driver until it ends or an outage it is caught in has lasted the
    /// grace, whichever comes first (the waiting path's counterpart of `MongoFuture`'s).
    pub(crate) async fn bounded<T>(
        &self,
        attempt: keel_core::OperationFuture<T>,
    ) -> Result<T, Error> {
        // Created before the attempt starts, so a cut meanwhile is not missed.
        let mut cut = std::pin::pin!(self.outage_cut());
        let mut attempt = attempt;
        loop {
            tokio::select! {
                result = &mut attempt => {
                    let result = result.map_err(Error::from);
                    self.observe(result.as_ref().map(|_| ()));
                    return result;
                }
                () = &mut cut => {
                    if let Some(cut_short) = self.in_flight_cut() {
                        return Err(cut_short);
                    }
                    cut.set(self.outage_cut());
                }
            }
        }
    }

    /// Feeds an operation's outcome to the state machine.
    pub(crate) fn observe(&self, outcome: Result<(), &Error>) {
        let signal = match outcome {
            Ok(()) => Signal::OperationSucceeded,
            Err(err) => match err.class() {
                ErrorClass::ServerSelection => Signal::ServerUnreachable,
                ErrorClass::Network | ErrorClass::StateChange | ErrorClass::PoolCleared => {
                    Signal::OperationFailed
                }
                _ => return,
            },
        };
        self.state.apply(signal);
    }
}

async fn validate_once(client: &Client, authenticated: bool) -> Result<(), Error> {
    let admin = client.database("admin");
    admin.run_command(doc! { "hello": 1 }).await?;
    admin.run_command(doc! { "ping": 1 }).await?;
    if authenticated {
        let status: Document = admin.run_command(doc! { "connectionStatus": 1 }).await?;
        let users = status
            .get_document("authInfo")
            .and_then(|info| info.get_array("authenticatedUsers"))
            .map(Vec::len)
            .unwrap_or(0);
        if users == 0 {
            return Err(Error::config(
                "credentials are configured but the server reports no authenticated user; \
                 check the username, password and authSource",
            ));
        }
    }
    Ok(())
}

/// Feeds the driver's SDAM events (topology changes and the monitors' heartbeats) through the
/// [`topology::Deployment`] picture into the state machine.
fn sdam_handler(state: Arc<StateMachine>) -> EventHandler<SdamEvent> {
    // The driver delivers SDAM events one at a time, in order, from one task: the lock is
    // never contended, it only makes the picture shareable with the callback.
    let deployment = Mutex::new(topology::Deployment::default());
    EventHandler::callback(move |event: SdamEvent| {
        let signal = deployment
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .observe(&event, Instant::now());
        if let Some(signal) = signal {
            state.apply(signal);
        }
    })
}

fn cmap_handler(state: Arc<StateMachine>, metrics: Arc<PoolMetrics>) -> EventHandler<CmapEvent> {
    EventHandler::callback(move |event: CmapEvent| {
        metrics.record(&event);
        if matches!(event, CmapEvent::PoolCleared(_)) {
            state.apply(Signal::PoolCleared);
        }
    })
}

/// While `Reconnecting` or `Unreachable`, pings so the driver keeps checking the servers (it
/// checks at most every 500 ms while an operation waits for a server) and the recovery is seen
/// quickly. Ends with the client.
async fn reconnect_probe(shared: Weak<Shared>) {
    let Some(strong) = shared.upgrade() else {
        return;
    };
    let mut receiver = strong.state.subscribe();
    drop(strong);
    loop {
        let state = *receiver.borrow_and_update();
        match state {
            ConnectionState::Closed => return,
            ConnectionState::Reconnecting | ConnectionState::Unreachable => {
                let Some(strong) = shared.upgrade() else {
                    return;
                };
                let client = strong.current();
                let interval = strong.settings.probe_interval;
                let limit = strong.settings.reconnect_wait;
                drop(strong);
                let admin = client.database("admin");
                let ping = admin.run_command(doc! { "ping": 1 });
                if let Ok(Ok(_)) = tokio::time::timeout(limit, ping).await {
                    if let Some(strong) = shared.upgrade() {
                        strong.state.apply(Signal::OperationSucceeded);
                    }
                    continue;
                }
                tokio::time::sleep(interval).await;
            }
            _ => {
                if receiver.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}
