//! A MongoDB wire-protocol test server with fault injection, for resilience tests without a
//! real `mongod`.
//!
//! - [`TestServer`]: an in-process server speaking OP_MSG (and the legacy OP_QUERY
//!   handshake) with in-memory (optionally persisted) storage, the CRUD, index and admin
//!   commands drivers use, `stop`/`restart` on the same port and `pause` (a black hole).
//!   It runs standalone or as a replica set ([`TestServer::replica_set`]: one listener per
//!   member, `step_down`/`elect` failovers and elections when a primary dies that drivers
//!   follow by themselves, change streams with
//!   resume tokens and a bounded oplog), optionally with SCRAM authentication
//!   ([`TestServerBuilder::auth`]) and TLS ([`TestServerBuilder::tls`], [`TlsIdentity`]).
//! - [`FailCommand`]: mongod's `failCommand` fail point, configurable through the same
//!   `configureFailPoint` command a real `mongod --setParameter enableTestCommands=1` takes, or
//!   from Rust.
//! - [`FaultProxy`]: a TCP proxy for any MongoDB server with latency, jitter, bandwidth limits,
//!   resets, a black hole and refused connections, all switchable at run time.
//!
//! ```
//! # #![allow(clippy::unwrap_used)]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use keel_testkit::{FaultProxy, TestServer};
//! use std::time::Duration;
//!
//! let server = TestServer::start().await?;
//! let proxy = FaultProxy::start(server.addr()).await?;
//! proxy.set_latency(Duration::from_millis(5), Duration::from_millis(2));
//! let client = mongodb::Client::with_uri_str(proxy.uri()).await?;
//! client.database("admin").run_command(mongodb::bson::doc! {"ping": 1}).await?;
//! # Ok(())
//! # }
//! ```

mod auth;
mod commands;
mod error;
mod fail_point;
mod net;
mod proxy;
mod query;
mod server;
mod storage;
mod tls;
mod wire;

pub use error::TestkitError;
pub use fail_point::{FailCommand, FailPointMode};
pub use proxy::FaultProxy;
pub use server::{TestServer, TestServerBuilder};
pub use tls::TlsIdentity;
