//! The server: shared state, the accept loop, per-connection protocol handling, and the
//! [`TestServer`] handle that starts, stops, restarts and pauses it.

mod builder;
mod connection;
mod election;
mod fail_points;
mod listener;
mod noop_writer;
mod replica_set;
mod replication;
mod retryable;
mod state;
mod test_server;
mod transactions;
mod uri;

pub use builder::TestServerBuilder;
pub(crate) use replica_set::{ElectionError, ReplicaSet};
pub(crate) use state::{ConnInfo, Counters, Cursor, Frozen, Shared, lock};
pub use test_server::TestServer;
