//! Alerts: thresholds with hysteresis raise and clear them; sinks deliver them.
//!
//! * [`Hysteresis`] turns a stream of values into `Raised` / `Cleared` transitions.
//! * [`AlertEvent`] is what sinks receive; it carries numbers and closed-set names only.
//! * Sinks: [`LogSink`] (`tracing`), [`ChannelSink`] (for the application),
//!   [`WebhookSink`] (HTTP POST with retry), or your own [`AlertSink`].

mod event;
mod http;
mod hysteresis;
mod sink;
mod webhook;

pub use event::{AlertEvent, AlertKind, Transition};
pub use hysteresis::Hysteresis;
pub(crate) use sink::Dispatcher;
pub use sink::{AlertSink, ChannelSink, LogSink, SinkError};
pub use webhook::{WebhookConfig, WebhookSink};
