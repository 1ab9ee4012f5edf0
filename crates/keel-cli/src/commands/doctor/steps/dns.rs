//! Step 2, `dns`: resolve the SRV record of a mongodb+srv:// string and every host name.

use std::net::{IpAddr, SocketAddr};

use mongodb::options::{ClientOptions, HostInfo, ServerAddress, Tls};
use tokio::time::Instant;

use super::super::Check;
use super::super::advice::{self, Finding};
use super::{DEFAULT_PORT, Diagnosis, Target};

impl Diagnosis {
    pub(super) async fn dns(&mut self) -> Check {
        let srv = match &self.loaded.connection.host_info {
            HostInfo::DnsRecord(host) => Some(host.clone()),
            _ => None,
        };
        let started = Instant::now();
        // Parsing resolves the SRV and TXT records of a mongodb+srv:// string.
        let options =
            match tokio::time::timeout(self.limit, self.loaded.config.to_client_options()).await {
                Err(_) => {
                    let what = srv.as_deref().map_or_else(
                        || "the connection string".to_owned(),
                        |host| format!("the SRV record _mongodb._tcp.{host}"),
                    );
                    return Check::fail("dns", advice::dns_timeout(&what, self.limit));
                }
                Ok(Err(errors)) => {
                    let Some(host) = &srv else {
                        return super::uri::config_failed("dns", &errors);
                    };
                    // The driver's own message, without the configuration's wrapping.
                    let detail = ClientOptions::parse(self.loaded.config.uri.expose())
                        .await
                        .err()
                        .map_or_else(|| errors.to_string(), |e| e.kind.to_string());
                    return Check::fail("dns", advice::srv_failed(host, &detail));
                }
                Ok(Ok(options)) => options,
            };
        let srv_took = started.elapsed();
        let mut resolved = Vec::new();
        let mut failures = Vec::new();
        let mut notes = Vec::new();
        for address in &options.hosts {
            let ServerAddress::Tcp { host, port } = address else {
                notes.push(format!("{address} is a Unix socket: not checked over TCP"));
                continue;
            };
            let port = port.unwrap_or(DEFAULT_PORT);
            let target = |addrs| Target {
                host: host.clone(),
                port,
                addrs,
                connected: None,
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                resolved.push(target(vec![SocketAddr::new(ip, port)]));
                continue;
            }
            match tokio::time::timeout(self.limit, tokio::net::lookup_host((host.as_str(), port)))
                .await
            {
                Ok(Ok(addrs)) => resolved.push(target(addrs.collect())),
                Ok(Err(error)) => failures.push(advice::unresolvable(host, &error)),
                Err(_) => failures.push(advice::dns_timeout(host, self.limit)),
            }
        }
        self.tls = matches!(options.tls, Some(Tls::Enabled(_)));
        self.options = Some(options);
        let shown: Vec<String> = resolved
            .iter()
            .take(4)
            .map(|t| match t.addrs.first() {
                Some(addr) if addr.ip().to_string() != t.host => {
                    format!("{} → {}", t.host, addr.ip())
                }
                _ => format!("{} (an address)", t.host),
            })
            .collect();
        let mut check = match (resolved.is_empty(), failures.first()) {
            (true, Some(first)) => Check::fail("dns", first.clone()),
            (true, None) => Check::fail(
                "dns",
                Finding {
                    problem: "the connection string names no TCP host.".to_owned(),
                    fix: "give at least one host:port.".to_owned(),
                },
            ),
            (false, Some(first)) => Check::warn(
                "dns",
                Finding {
                    problem: format!(
                        "{} of {} hosts do not resolve; the others do ({}). First: {}",
                        failures.len(),
                        failures.len() + resolved.len(),
                        shown.join(", "),
                        first.problem
                    ),
                    fix: first.fix.clone(),
                },
            ),
            (false, None) => Check::pass("dns", shown.join(", ")),
        };
        if let Some(host) = srv {
            let hosts: Vec<String> = resolved.iter().map(Target::label).collect();
            check = check.note(format!(
                "SRV _mongodb._tcp.{host} → {} ({} ms)",
                hosts.join(", "),
                srv_took.as_millis()
            ));
        }
        for note in notes {
            check = check.note(note);
        }
        self.targets = resolved;
        check
    }
}
