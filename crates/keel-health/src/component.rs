//! Components: health checks that live outside keel-health (a change-stream consumer, a sync
//! queue, a backup schedule) reporting into the same monitor, report, dashboard and alert sinks.
//!
//! A component can only make the report `Degraded`, never `Unhealthy`: the health gate refuses
//! requests for the connection's own state, and a stalled consumer is no reason to stop serving
//! the application's other requests.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::watch;

/// One registered component and its state, as the report and the dashboard show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentHealth {
    /// The name given to [`HealthHandle::component`](crate::HealthHandle::component), e.g.
    /// `change_stream:orders`.
    pub name: String,
    /// `None` while healthy; else the sentence the component gave with
    /// [`ComponentReporter::degraded`].
    pub detail: Option<String>,
}

impl ComponentHealth {
    /// Whether the component reports a problem.
    pub fn is_degraded(&self) -> bool {
        self.detail.is_some()
    }
}

/// The components registered with one monitor; shared by its handles and its task.
#[derive(Debug)]
pub(crate) struct Components {
    next_id: AtomicU64,
    entries: Mutex<BTreeMap<u64, ComponentHealth>>,
    /// Bumped on every change so the monitor's task re-evaluates at once.
    changed: watch::Sender<u64>,
}

impl Components {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            next_id: AtomicU64::new(0),
            entries: Mutex::new(BTreeMap::new()),
            changed: watch::channel(0).0,
        })
    }

    /// Every registered component by registration id, in registration order.
    pub(crate) fn snapshot(&self) -> BTreeMap<u64, ComponentHealth> {
        self.lock().clone()
    }

    /// A receiver that wakes on every change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ComponentHealth>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a healthy component and returns its reporter.
    pub(crate) fn register(self: &Arc<Self>, name: String) -> ComponentReporter {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            ComponentHealth {
                name: name.clone(),
                detail: None,
            },
        );
        self.notify();
        ComponentReporter {
            id,
            name,
            registry: Arc::clone(self),
        }
    }

    fn set(&self, id: u64, detail: Option<String>) {
        let changed = match self.lock().get_mut(&id) {
            Some(entry) if entry.detail != detail => {
                entry.detail = detail;
                true
            }
            _ => false,
        };
        if changed {
            self.notify();
        }
    }

    fn remove(&self, id: u64) {
        if self.lock().remove(&id).is_some() {
            self.notify();
        }
    }

    fn notify(&self) {
        self.changed
            .send_modify(|version| *version = version.wrapping_add(1));
    }
}

/// How one component reports its health. Made by
/// [`HealthHandle::component`](crate::HealthHandle::component); starts healthy; dropping it
/// removes the component (and clears its alert).
///
/// ```no_run
/// # fn run(health: &keel_health::HealthHandle) {
/// let reporter = health.component("change_stream:orders");
/// reporter.degraded("the checkpoint is 42 min old, 70 % of the oplog window");
/// // ... later, once it caught up:
/// reporter.healthy();
/// # }
/// ```
#[derive(Debug)]
#[must_use = "the component is removed when its reporter is dropped"]
pub struct ComponentReporter {
    id: u64,
    name: String,
    registry: Arc<Components>,
}

impl ComponentReporter {
    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reports a problem: the overall report becomes `Degraded` with
    /// [`Reason::Component`](crate::Reason::Component), and the first call after a healthy
    /// state raises a [`ComponentDegraded`](crate::AlertKind::ComponentDegraded) alert.
    ///
    /// `detail` is shown on the dashboard, in `/health` JSON, in logs and alerts: one sentence
    /// saying what is wrong, with no secret and no server message in it.
    pub fn degraded(&self, detail: impl Into<String>) {
        self.registry.set(self.id, Some(detail.into()));
    }

    /// Reports that the problem is gone (clears the alert).
    pub fn healthy(&self) {
        self.registry.set(self.id, None);
    }
}

impl Drop for ComponentReporter {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reporter_changes_and_removes_its_entry_and_each_change_is_signalled() {
        let registry = Components::new();
        let changes = registry.subscribe();
        let reporter = registry.register("sync:notes".into());
        assert_eq!(*changes.borrow(), 1);
        reporter.degraded("the queue has not drained for 10 min");
        reporter.degraded("the queue has not drained for 10 min");
        assert_eq!(*changes.borrow(), 2, "an unchanged detail is not a change");
        let entries = registry.snapshot();
        assert_eq!(
            entries.values().next().and_then(|c| c.detail.as_deref()),
            Some("the queue has not drained for 10 min")
        );
        reporter.healthy();
        assert!(
            !registry
                .snapshot()
                .values()
                .any(ComponentHealth::is_degraded)
        );
        drop(reporter);
        assert!(registry.snapshot().is_empty());
        assert_eq!(*changes.borrow(), 4);
    }
}
