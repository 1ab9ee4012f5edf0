//! Helpers shared by the integration tests: a server plus a driver client with short timeouts.

#![allow(dead_code, unreachable_pub)]

pub mod raw;

use std::time::Duration;

use keel_testkit::TestServer;
use mongodb::bson::Document;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};

/// A running server and a client connected to it.
pub struct Fixture {
    pub server: TestServer,
    pub client: Client,
}

/// Client options for `uri` with timeouts short enough that expected failures are quick.
pub async fn fast_options(uri: &str) -> ClientOptions {
    let mut options = ClientOptions::parse(uri).await.expect("valid uri");
    options.server_selection_timeout = Some(Duration::from_secs(2));
    options.connect_timeout = Some(Duration::from_secs(2));
    options.heartbeat_freq = Some(Duration::from_millis(500));
    options
}

impl Fixture {
    pub async fn new() -> Self {
        let server = TestServer::start().await.expect("server starts");
        let client = Client::with_options(fast_options(&server.uri()).await).expect("client");
        Self { server, client }
    }

    pub fn coll(&self, name: &str) -> Collection<Document> {
        self.client.database("testkit").collection(name)
    }
}

/// A replica set of `members` and a client with short timeouts.
pub async fn replica_set(members: usize) -> (TestServer, Client) {
    let server = TestServer::replica_set("rs0", members)
        .await
        .expect("server starts");
    let client = Client::with_options(fast_options(&server.uri()).await).expect("client");
    (server, client)
}

/// The next item of a change stream (or any driver stream): a hang, an end or an error fails.
pub async fn next_event<T, S>(s: &mut S) -> T
where
    S: futures_util::Stream<Item = mongodb::error::Result<T>> + Unpin,
{
    use futures_util::StreamExt;
    within(s.next()).await.expect("an event").expect("no error")
}

/// Awaits `f` with a generous upper bound so a hang fails the test instead of stalling CI.
pub async fn within<F: std::future::IntoFuture>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f.into_future())
        .await
        .expect("operation finished in time")
}

/// The server error code of a command error (`{ok: 0, code}`), if that is what `e` is.
pub fn code(e: &mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}
