//! Connection pool sizes and the bounds on requests waiting for a connection.

use std::time::Duration;

/// How many connections Keel keeps and how many requests may wait for one.
///
/// Defaults (see `keel config explain` for the value in effect and its reason): `max_size` 100,
/// `min_size` 0 (2 with the server preset), `max_connecting` 2, `max_idle` 3m, `max_waiting`
/// 500, `reconnect_queue` 1000; the serverless preset shrinks all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Most connections per server (driver `maxPoolSize`). Zero is rejected: the driver would
    /// read it as "unbounded".
    pub max_size: u32,
    /// Connections kept open even when idle (driver `minPoolSize`); at most `max_size`.
    pub min_size: u32,
    /// Connections being established at once (driver `maxConnecting`); bounds the connection
    /// storm after a failover.
    pub max_connecting: u32,
    /// Idle time after which a pooled connection is closed (driver `maxIdleTimeMS`).
    pub max_idle: Duration,
    /// Checkout wait limit: how many requests may wait for a connection at once; the next one
    /// fails fast as overloaded. Enforced by `keel-pool-core`, not the driver. How *long* one
    /// may wait is [`Timeouts::checkout_wait`](crate::Timeouts::checkout_wait).
    pub max_waiting: u32,
    /// How many requests may queue while the client reconnects; beyond it they fail fast.
    /// Enforced by `keel-pool-core`.
    pub reconnect_queue: u32,
}
