//! The `health` feature: the monitor Keel spawns, the gate over its reports, and the
//! per-operation statistics shared by the metrics layer, the monitor and the dashboard.

use keel_config::KeelConfig;
use keel_core::Error;
use keel_health::{
    HealthConfig, HealthGateLayer, HealthHandle, HealthMonitor, HealthMonitorBuilder, LogSink,
    OperationStats,
};
use keel_pool_core::ManagedClient;

type AddSink = Box<dyn FnOnce(HealthMonitorBuilder) -> HealthMonitorBuilder + Send>;

/// What the builder was asked for.
pub(crate) struct HealthChoice {
    pub(crate) config: Option<HealthConfig>,
    pub(crate) sinks: Vec<AddSink>,
    pub(crate) gate: bool,
}

impl Default for HealthChoice {
    fn default() -> Self {
        Self {
            config: None,
            sinks: Vec::new(),
            gate: true,
        }
    }
}

impl std::fmt::Debug for HealthChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChoice")
            .field("config", &self.config)
            .field("sinks", &self.sinks.len())
            .field("gate", &self.gate)
            .finish()
    }
}

/// The running monitor and what the stack needs from it.
#[derive(Debug)]
pub(crate) struct Health {
    /// Kept so the checks run as long as the `Keel` (dropping it stops them); taken on shutdown.
    pub(crate) monitor: std::sync::Mutex<Option<HealthMonitor>>,
    pub(crate) handle: HealthHandle,
    pub(crate) gate: Option<HealthGateLayer>,
    pub(crate) operations: OperationStats,
}

impl HealthChoice {
    /// Spawns the monitor over `client` (and the breaker, when there is one).
    pub(crate) fn start(
        self,
        config: &KeelConfig,
        client: &ManagedClient,
        #[cfg(feature = "breaker")] breaker: Option<&keel_breaker::Breaker>,
    ) -> Result<Health, Error> {
        let operations = OperationStats::default();
        let health_config = self
            .config
            .unwrap_or_else(|| crate::layers::health_config(config));
        let mut builder = HealthMonitor::builder(client.clone(), health_config)
            .operations(operations.clone())
            .sink(LogSink);
        #[cfg(feature = "breaker")]
        if let Some(breaker) = breaker {
            builder = builder.breaker(breaker);
        }
        for add in self.sinks {
            builder = add(builder);
        }
        let monitor = builder
            .spawn()
            .map_err(|e| Error::config(format!("health settings: {e}")))?;
        let handle = monitor.handle();
        Ok(Health {
            gate: self.gate.then(|| HealthGateLayer::new(&handle)),
            monitor: std::sync::Mutex::new(Some(monitor)),
            handle,
            operations,
        })
    }
}
