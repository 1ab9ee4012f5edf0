//! Step 6, `auth`: authenticate with the given credentials, or find out whether the server
//! needs any.

use keel_core::Error;
use mongodb::Client;
use mongodb::bson::doc;

use super::super::advice::{self, Finding};
use super::super::{Check, Status};
use super::Diagnosis;

impl Diagnosis {
    pub(super) async fn auth(&mut self) -> Check {
        let Some(target) = self.first_reachable().cloned() else {
            return Check::skip("auth", "no reachable host");
        };
        let has_credentials = self
            .options
            .as_ref()
            .is_some_and(|o| o.credential.is_some());
        let Some(options) = self.direct_options(&target, true) else {
            return Check::skip("auth", "no driver options");
        };
        let client = match Client::with_options(options) {
            Ok(client) => client,
            Err(error) => {
                return Check::fail(
                    "auth",
                    advice::driver_failed(
                        "authentication",
                        &target.label(),
                        &Error::from_driver(error),
                        self.tls,
                    ),
                );
            }
        };
        let check = if has_credentials {
            match self.command(&client, doc! { "connectionStatus": 1 }).await {
                Ok(status) => {
                    let users = status
                        .get_document("authInfo")
                        .ok()
                        .and_then(|info| info.get_array("authenticatedUsers").ok())
                        .map_or(0, Vec::len);
                    let source = self
                        .options
                        .as_ref()
                        .and_then(|o| o.credential.as_ref())
                        .and_then(|c| c.source.clone())
                        .unwrap_or_else(|| "the default database".to_owned());
                    if users > 0 {
                        Check::pass(
                            "auth",
                            format!("authenticated (user name hidden) against {source}"),
                        )
                    } else {
                        Check::fail(
                            "auth",
                            Finding {
                                problem: "the server accepted the connection but reports no \
                                          authenticated user."
                                    .to_owned(),
                                fix: "check authSource and authMechanism in the connection string."
                                    .to_owned(),
                            },
                        )
                    }
                }
                Err(error) => Check::fail(
                    "auth",
                    advice::driver_failed("authentication", &target.label(), &error, self.tls),
                ),
            }
        } else {
            match self
                .command(&client, doc! { "listDatabases": 1, "nameOnly": true })
                .await
            {
                Ok(_) => {
                    let local = target.connected.is_some_and(|a| a.ip().is_loopback());
                    if local {
                        Check::pass(
                            "auth",
                            "no credentials given, and this local server does not ask for them",
                        )
                    } else {
                        Check::warn(
                            "auth",
                            Finding {
                                problem: format!(
                                    "{} serves clients without credentials, and it is reachable \
                                     over the network.",
                                    target.label()
                                ),
                                fix: "enable authentication on the server \
                                      (security.authorization: enabled) and connect with a user."
                                    .to_owned(),
                            },
                        )
                    }
                }
                Err(error) => Check::fail(
                    "auth",
                    advice::driver_failed("check", &target.label(), &error, self.tls),
                ),
            }
        };
        // Later steps use this connection only if it works.
        if check.status == Status::Fail {
            client.shutdown().immediate(true).await;
        } else {
            self.direct = Some(client);
        }
        check
    }
}
