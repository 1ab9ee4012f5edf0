//! OpenTelemetry metrics (feature `otel`): what `OtelLayer` records into `keel.operations` and
//! `keel.operation.duration`, read back from a minimal in-test meter provider. Its own test
//! binary, because the meter provider is process-global.
//! Run with `cargo test -p keel-health --features otel --test otel_metrics`.

#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    borrow::Cow,
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_core::{Error, ErrorClass, Operation, OperationName};
use keel_health::otel::OtelLayer;
use opentelemetry::{
    InstrumentationScope, KeyValue, Value, global,
    metrics::{
        Counter, Histogram, HistogramBuilder, InstrumentBuilder, InstrumentProvider, Meter,
        MeterProvider, SyncInstrument,
    },
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// One measurement: instrument, value, attributes.
#[derive(Clone, Debug)]
struct Measured {
    instrument: Cow<'static, str>,
    value: f64,
    attributes: Vec<KeyValue>,
}

impl Measured {
    fn attr(&self, key: &str) -> Option<Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }
}

type Log = Arc<Mutex<Vec<Measured>>>;

#[derive(Clone, Debug, Default)]
struct Recorder(Log);

struct Instrument {
    name: Cow<'static, str>,
    log: Log,
}

impl SyncInstrument<u64> for Instrument {
    fn measure(&self, value: u64, attributes: &[KeyValue]) {
        self.record(value as f64, attributes);
    }
}

impl SyncInstrument<f64> for Instrument {
    fn measure(&self, value: f64, attributes: &[KeyValue]) {
        self.record(value, attributes);
    }
}

impl Instrument {
    fn record(&self, value: f64, attributes: &[KeyValue]) {
        self.log.lock().unwrap().push(Measured {
            instrument: self.name.clone(),
            value,
            attributes: attributes.to_vec(),
        });
    }
}

impl Recorder {
    fn instrument(&self, name: Cow<'static, str>) -> Arc<Instrument> {
        Arc::new(Instrument {
            name,
            log: Arc::clone(&self.0),
        })
    }

    fn take(&self) -> Vec<Measured> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl InstrumentProvider for Recorder {
    fn u64_counter(&self, builder: InstrumentBuilder<'_, Counter<u64>>) -> Counter<u64> {
        Counter::new(self.instrument(builder.name))
    }

    fn f64_histogram(&self, builder: HistogramBuilder<'_, Histogram<f64>>) -> Histogram<f64> {
        Histogram::new(self.instrument(builder.name))
    }
}

impl MeterProvider for Recorder {
    fn meter_with_scope(&self, scope: InstrumentationScope) -> Meter {
        assert_eq!(scope.name(), "keel");
        Meter::new(Arc::new(self.clone()))
    }
}

/// An operation by that name; the service in the test decides how it ends.
fn operation(name: impl Into<OperationName>) -> Operation<u32> {
    Operation::read(name, |_client: mongodb::Client| async { Ok(1u32) })
}

#[tokio::test(start_paused = true)]
async fn every_operation_counts_once_with_its_outcome_and_its_whole_latency() {
    let recorder = Recorder::default();
    // Instruments are created when the layer is built: the provider comes first.
    global::set_meter_provider(recorder.clone());
    let service = ServiceBuilder::new()
        .layer(OtelLayer::new())
        .service(service_fn(|op: Operation<u32>| async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if op.name().starts_with("orders.") {
                Err(Error::unreachable(Duration::from_millis(5)))
            } else {
                Ok(7)
            }
        }));

    // A name built at run time, as a collection façade builds them.
    let built = format!("{}.find", "users");
    assert_eq!(service.clone().oneshot(operation(built)).await.unwrap(), 7);
    let measured = recorder.take();
    assert_eq!(measured.len(), 2, "{measured:#?}");
    let count = measured
        .iter()
        .find(|m| m.instrument == "keel.operations")
        .unwrap();
    assert_eq!(count.value, 1.0);
    assert_eq!(
        count.attr("db.operation.name"),
        Some(Value::from("users.find"))
    );
    assert_eq!(count.attr("outcome"), Some(Value::from("success")));
    assert_eq!(count.attr("error.type"), None);
    let latency = measured
        .iter()
        .find(|m| m.instrument == "keel.operation.duration")
        .unwrap();
    assert_eq!(latency.value, 0.25);
    assert_eq!(latency.attributes, count.attributes);

    let err = service.oneshot(operation("orders.drop")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerSelection);
    let measured = recorder.take();
    assert_eq!(measured.len(), 2, "{measured:#?}");
    for m in &measured {
        assert_eq!(
            m.attr("db.operation.name"),
            Some(Value::from("orders.drop"))
        );
        assert_eq!(m.attr("outcome"), Some(Value::from("error")));
        // The class, never the message.
        assert_eq!(m.attr("error.type"), Some(Value::from("server_selection")));
    }
}
