//! Step 5, `handshake`: MongoDB's `hello` on one server, without credentials, and the replica
//! set name it reports against the connection string's.

use keel_core::Error;
use mongodb::Client;
use mongodb::bson::{Document, doc};
use tokio::time::Instant;

use super::super::Check;
use super::super::advice::{self, Finding};
use super::Diagnosis;

impl Diagnosis {
    pub(super) async fn handshake(&mut self) -> Check {
        let Some(target) = self.first_reachable().cloned() else {
            return Check::skip("handshake", "no reachable host");
        };
        let Some(options) = self.direct_options(&target, false) else {
            return Check::skip("handshake", "no driver options");
        };
        let client = match Client::with_options(options) {
            Ok(client) => client,
            Err(error) => {
                return Check::fail(
                    "handshake",
                    advice::driver_failed(
                        "handshake",
                        &target.label(),
                        &Error::from_driver(error),
                        self.tls,
                    ),
                );
            }
        };
        let started = Instant::now();
        let hello = self.command(&client, doc! { "hello": 1 }).await;
        let took = started.elapsed();
        let version = self
            .command(&client, doc! { "buildInfo": 1 })
            .await
            .ok()
            .and_then(|info| info.get_str("version").ok().map(str::to_owned));
        client.shutdown().immediate(true).await;
        let hello = match hello {
            Ok(hello) => hello,
            Err(error) => {
                return Check::fail(
                    "handshake",
                    advice::driver_failed("handshake", &target.label(), &error, self.tls),
                );
            }
        };
        let role = role(&hello);
        let version = version.map_or_else(|| "MongoDB".to_owned(), |v| format!("MongoDB {v}"));
        let mut check = Check::pass(
            "handshake",
            format!(
                "{} answers: {version}, {role} ({} ms)",
                target.label(),
                took.as_millis()
            ),
        );
        let wanted = self.loaded.connection.replica_set.clone();
        let actual = hello.get_str("setName").ok().map(str::to_owned);
        match (wanted, actual) {
            (Some(wanted), Some(actual)) if wanted != actual => {
                check = Check::fail(
                    "handshake",
                    Finding {
                        problem: format!(
                            "{} belongs to replica set '{actual}', but the connection string asks \
                             for replicaSet={wanted}: the driver would ignore the server.",
                            target.label()
                        ),
                        fix: format!("set replicaSet={actual} in the connection string."),
                    },
                );
            }
            (Some(wanted), None) if hello.get_str("msg").ok() != Some("isdbgrid") => {
                check = Check::fail(
                    "handshake",
                    Finding {
                        problem: format!(
                            "the connection string asks for replicaSet={wanted}, but {} is a \
                             standalone server: the driver would never find a member.",
                            target.label()
                        ),
                        fix: "remove replicaSet= from the connection string, or start the server \
                              as a replica set member (--replSet) and run rs.initiate()."
                            .to_owned(),
                    },
                );
            }
            _ => {}
        }
        self.hello = Some(hello);
        check
    }
}

/// What kind of server a `hello` reply describes.
fn role(hello: &Document) -> String {
    if hello.get_str("msg").ok() == Some("isdbgrid") {
        return "a mongos router of a sharded cluster".to_owned();
    }
    let Ok(set) = hello.get_str("setName") else {
        return "a standalone server".to_owned();
    };
    let state = if hello.get_bool("isWritablePrimary").unwrap_or(false) {
        "primary"
    } else if hello.get_bool("secondary").unwrap_or(false) {
        "secondary"
    } else if hello.get_bool("arbiterOnly").unwrap_or(false) {
        "arbiter"
    } else {
        "not yet primary or secondary"
    };
    format!("{state} of replica set '{set}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_in_words() {
        assert_eq!(
            role(&doc! { "isWritablePrimary": true }),
            "a standalone server"
        );
        assert_eq!(
            role(&doc! { "setName": "rs0", "isWritablePrimary": true }),
            "primary of replica set 'rs0'"
        );
        assert_eq!(
            role(&doc! { "msg": "isdbgrid" }),
            "a mongos router of a sharded cluster"
        );
    }
}
