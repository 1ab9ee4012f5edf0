//! The metric keys of each operation name, built once and reused for every call.
//!
//! `metrics::counter!("name", "op" => op)` builds its key on every call: a label vector to
//! allocate and a hash to compute, even when no recorder is installed. For an operation in front
//! of a fast server that was a measurable part of Keel's cost, so the keys live here instead.
//! Only keys are cached, never the recorder's handles: the recorder is looked up per call, so a
//! recorder installed later, or a thread-local one in a test, still sees every operation.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use keel_core::OperationName;
use metrics::{Key, Label, Level, Metadata, SharedString};

use super::names;

/// Beyond this many distinct names the keys are built per call, as the macros do: a name is
/// meant to come from a small fixed set, and a misuse must not grow memory without bound.
const MAX_CACHED_NAMES: usize = 1024;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys that every call of one operation records.
#[derive(Debug)]
pub(crate) struct OperationKeys {
    success: Key,
    error: Key,
    duration: Key,
    op: SharedString,
}

impl OperationKeys {
    fn new(op: &OperationName) -> Self {
        let op = label(op.clone());
        let outcome = |outcome: &'static str| {
            Key::from_parts(
                names::OPERATIONS,
                vec![
                    Label::new("op", op.clone()),
                    Label::from_static_parts("outcome", outcome),
                ],
            )
        };
        Self {
            success: outcome("success"),
            error: outcome("error"),
            duration: Key::from_parts(
                names::OPERATION_DURATION,
                vec![Label::new("op", op.clone())],
            ),
            op,
        }
    }

    /// Records one finished call: its outcome (with the error class, if any) and latency.
    pub(crate) fn record(&self, class: Option<&'static str>, seconds: f64) {
        metrics::with_recorder(|recorder| {
            let outcome = if class.is_some() {
                &self.error
            } else {
                &self.success
            };
            recorder.register_counter(outcome, &METADATA).increment(1);
            if let Some(class) = class {
                // Errors are the rare path: their key is built when one happens.
                let key = Key::from_parts(
                    names::OPERATION_ERRORS,
                    vec![
                        Label::new("op", self.op.clone()),
                        Label::from_static_parts("class", class),
                    ],
                );
                recorder.register_counter(&key, &METADATA).increment(1);
            }
            recorder
                .register_histogram(&self.duration, &METADATA)
                .record(seconds);
        });
    }
}

fn label(name: OperationName) -> SharedString {
    match name {
        OperationName::Static(name) => SharedString::const_str(name),
        OperationName::Shared(name) => SharedString::from(name),
    }
}

/// Keys per operation name, shared by the clones of one layer.
///
/// Hashed with foldhash rather than SipHash: the lookup runs on every call, the names come from
/// the application's code, and the bound above caps what any flood of names could cost.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyCache {
    keys: Arc<RwLock<HashMap<OperationName, Arc<OperationKeys>, foldhash::fast::RandomState>>>,
}

impl KeyCache {
    /// The keys of `op`, built on its first call.
    pub(crate) fn get(&self, op: &OperationName) -> Arc<OperationKeys> {
        if let Some(keys) = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(op)
        {
            return Arc::clone(keys);
        }
        let keys = Arc::new(OperationKeys::new(op));
        let mut cached = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if cached.len() < MAX_CACHED_NAMES {
            cached.insert(op.clone(), Arc::clone(&keys));
        }
        keys
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    #[test]
    fn keys_are_built_once_per_name_and_shared() {
        let cache = KeyCache::default();
        let first = cache.get(&OperationName::from("app.users.find_one"));
        let again = cache.get(&OperationName::from(String::from("app.users.find_one")));
        assert!(Arc::ptr_eq(&first, &again));
        cache.get(&OperationName::from("app.users.insert_one"));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_cache_stops_growing_at_its_bound_but_still_gives_keys() {
        let cache = KeyCache::default();
        for i in 0..MAX_CACHED_NAMES + 10 {
            let keys = cache.get(&OperationName::from(format!("op{i}")));
            assert_eq!(keys.op.as_ref(), format!("op{i}"));
        }
        assert_eq!(cache.len(), MAX_CACHED_NAMES);
    }

    #[test]
    fn a_recorder_installed_after_the_keys_were_built_sees_the_calls() {
        let cache = KeyCache::default();
        let keys = cache.get(&OperationName::from("app.users.find_one"));
        keys.record(None, 0.5);
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            keys.record(None, 0.25);
            keys.record(Some("network"), 1.0);
        });
        let seen: Vec<(String, Vec<String>, DebugValue)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key.labels().map(|l| format!("{}={}", l.key(), l.value()));
                (key.name().to_owned(), labels.collect(), value)
            })
            .collect();
        let find = |name: &str, labels: &[&str]| {
            seen.iter()
                .find(|(n, l, _)| n == name && l == labels)
                .map(|(_, _, value)| value)
        };
        let op = "op=app.users.find_one";
        assert_eq!(
            find(names::OPERATIONS, &[op, "outcome=success"]),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            find(names::OPERATIONS, &[op, "outcome=error"]),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            find(names::OPERATION_ERRORS, &[op, "class=network"]),
            Some(&DebugValue::Counter(1))
        );
        let Some(DebugValue::Histogram(latencies)) = find(names::OPERATION_DURATION, &[op]) else {
            panic!("no latency histogram in {seen:?}");
        };
        assert_eq!(latencies.len(), 2);
    }
}
