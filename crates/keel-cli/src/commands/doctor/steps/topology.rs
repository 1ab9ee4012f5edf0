//! Step 8, `topology`: discover the deployment the way the application will, and check that
//! the names its members go by resolve here.

use std::net::IpAddr;
use std::time::Duration;

use keel_core::Error;
use mongodb::Client;
use mongodb::bson::{Document, doc};
use mongodb::options::{ReadPreference, ReadPreferenceOptions, SelectionCriteria};

use super::super::Check;
use super::super::advice::{self, Finding};
use super::{DEFAULT_PORT, Diagnosis, Target};
use crate::failure;

impl Diagnosis {
    pub(super) async fn topology(&mut self) -> Check {
        let Some(mut options) = self.options.clone() else {
            return Check::skip("topology", "no driver options");
        };
        options.server_selection_timeout = Some(self.limit);
        options.connect_timeout = Some(self.limit);
        options.app_name = Some("keel-doctor".to_owned());
        options.min_pool_size = Some(0);
        let hello = self.hello.clone().unwrap_or_default();
        // The driver connects to the members under the names the replica set gives them, not
        // the ones in the connection string: check those resolve here.
        let mut unresolvable = Vec::new();
        let direct = options.direct_connection == Some(true);
        if !direct {
            for member in members(&hello) {
                let (host, port) = split_host(&member);
                if host.parse::<IpAddr>().is_ok() {
                    continue;
                }
                let lookup = tokio::net::lookup_host((host, port));
                if !matches!(tokio::time::timeout(self.limit, lookup).await, Ok(Ok(_))) {
                    unresolvable.push(member);
                }
            }
        }
        self.server_error.watch(&mut options);
        let discovered = match Client::with_options(options) {
            Ok(client) => {
                let criteria =
                    SelectionCriteria::ReadPreference(ReadPreference::PrimaryPreferred {
                        options: Some(ReadPreferenceOptions::default()),
                    });
                let database = client.database("admin");
                let run = database
                    .run_command(doc! { "hello": 1 })
                    .selection_criteria(criteria);
                let result =
                    match tokio::time::timeout(self.limit + Duration::from_secs(1), run).await {
                        Ok(Ok(reply)) => Ok(reply),
                        Ok(Err(error)) => Err(self.server_error.explain(error)),
                        Err(_) => Err(self.timed_out()),
                    };
                client.shutdown().immediate(true).await;
                result
            }
            Err(error) => Err(Error::from_driver(error)),
        };
        let unresolvable_finding = |list: &[String]| Finding {
            problem: format!(
                "the replica set calls its members {}, names this machine cannot resolve; the \
                 driver connects to those names, not the ones in the connection string.",
                list.join(", ")
            ),
            fix: "make those names resolvable here (DNS or /etc/hosts), or reconfigure the \
                  replica set with reachable names; to talk to the one server you named, add \
                  directConnection=true."
                .to_owned(),
        };
        let reply = match discovered {
            Ok(reply) => reply,
            Err(error) if !unresolvable.is_empty() => {
                return Check::fail("topology", unresolvable_finding(&unresolvable))
                    .note(failure::short_text(&error));
            }
            Err(error) => {
                let label = self
                    .first_reachable()
                    .map_or_else(String::new, Target::label);
                return Check::fail(
                    "topology",
                    advice::driver_failed("topology discovery", &label, &error, self.tls),
                );
            }
        };
        let summary = describe_topology(&reply);
        if !unresolvable.is_empty() {
            return Check::warn("topology", unresolvable_finding(&unresolvable)).note(summary);
        }
        if reply.get_str("setName").is_ok() && reply.get_str("primary").is_err() {
            return Check::warn(
                "topology",
                Finding {
                    problem: format!(
                        "{summary}: no primary right now, so writes fail until one is elected."
                    ),
                    fix: "wait for the election, or check that a majority of members is up and \
                          can reach each other (rs.status())."
                        .to_owned(),
                },
            );
        }
        let check = Check::pass("topology", summary);
        if reply.get_str("setName").is_err() && reply.get_str("msg").ok() != Some("isdbgrid") {
            check.note(
                "a standalone server has no failover: Keel's retries ride out a restart, but \
                 there is no second copy of the data",
            )
        } else {
            check
        }
    }
}

/// The members a replica set member lists (hosts and passives).
fn members(hello: &Document) -> Vec<String> {
    ["hosts", "passives"]
        .iter()
        .filter_map(|field| hello.get_array(field).ok())
        .flatten()
        .filter_map(|member| member.as_str().map(str::to_owned))
        .collect()
}

fn describe_topology(reply: &Document) -> String {
    if reply.get_str("msg").ok() == Some("isdbgrid") {
        return "sharded cluster: the driver talks to mongos routers".to_owned();
    }
    let Ok(set) = reply.get_str("setName") else {
        return "standalone server".to_owned();
    };
    let all = members(reply);
    let primary = reply.get_str("primary").ok();
    let others: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|m| Some(*m) != primary)
        .collect();
    match primary {
        Some(primary) => format!(
            "replica set '{set}': primary {primary}, {} other member{} ({})",
            others.len(),
            if others.len() == 1 { "" } else { "s" },
            others.join(", ")
        ),
        None => format!("replica set '{set}' with members {}", all.join(", ")),
    }
}

fn split_host(member: &str) -> (&str, u16) {
    match member.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
            host.trim_matches(['[', ']']),
            port.parse().unwrap_or(DEFAULT_PORT),
        ),
        _ => (member, DEFAULT_PORT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_in_words() {
        let set = doc! {
            "setName": "rs0",
            "primary": "a:1",
            "hosts": ["a:1", "b:1", "c:1"],
        };
        assert_eq!(
            describe_topology(&set),
            "replica set 'rs0': primary a:1, 2 other members (b:1, c:1)"
        );
        assert_eq!(members(&set).len(), 3);
    }

    #[test]
    fn member_names_split_into_host_and_port() {
        assert_eq!(split_host("mongo1:27018"), ("mongo1", 27018));
        assert_eq!(split_host("mongo1"), ("mongo1", 27017));
        assert_eq!(split_host("[::1]:27019"), ("::1", 27019));
    }
}
