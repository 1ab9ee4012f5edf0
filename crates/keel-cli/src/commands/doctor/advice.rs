//! Plain-English explanations of connection failures: what a symptom means and how to fix it.
//!
//! Each function turns one kind of failure into a [`Finding`]: a sentence saying what is wrong
//! and a sentence saying what to do. They are pure, so every explanation is unit-tested.

use std::io;
use std::time::Duration;

use keel_core::Error;
use keel_core::redact::redact_text;

pub(crate) use crate::failure::Finding;
use crate::failure::{self, Cause};

/// A host name that does not resolve.
pub(crate) fn unresolvable(host: &str, error: &io::Error) -> Finding {
    let container_hint = if host.contains('.') {
        ""
    } else {
        " A name without dots is often a container or Kubernetes service name, which resolves only \
         inside that network."
    };
    Finding::new(
        format!(
            "the name {host} does not resolve ({}): this machine cannot find its address.{container_hint}",
            redact_text(&error.to_string())
        ),
        format!(
            "check the spelling of {host} in the connection string, and that this machine's DNS \
             (or /etc/hosts) knows it."
        ),
    )
}

/// A DNS lookup that did not answer in time.
pub(crate) fn dns_timeout(what: &str, waited: Duration) -> Finding {
    Finding::new(
        format!(
            "looking up {what} got no answer within {} s: the DNS server is slow or unreachable.",
            waited.as_secs()
        ),
        "check this machine's DNS settings (/etc/resolv.conf), VPN or proxy.",
    )
}

/// An SRV lookup (`mongodb+srv://`) that failed.
pub(crate) fn srv_failed(host: &str, detail: &str) -> Finding {
    let lower = detail.to_ascii_lowercase();
    let why = if lower.contains("no records found") || lower.contains("nxdomain") {
        "no such record exists".to_owned()
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "the DNS server did not answer in time".to_owned()
    } else {
        redact_text(detail)
    };
    Finding::new(
        format!(
            "the SRV record _mongodb._tcp.{host} could not be read ({why}): a mongodb+srv:// \
             string needs it to find the servers."
        ),
        "copy the cluster's host name again from your provider (for MongoDB Atlas: Connect → \
         Drivers); if this network's DNS does not answer SRV queries, use the standard \
         mongodb://host1,host2,… string instead.",
    )
}

/// A TCP connection that failed.
pub(crate) fn tcp_failed(target: &str, error: &io::Error) -> Finding {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => Finding::new(
            format!(
                "TCP connection to {target} refused: nothing is listening there — is mongod \
                 running, and is the port right?"
            ),
            "start mongod (or your container), or correct the port in the connection string \
             (MongoDB's default is 27017).",
        ),
        io::ErrorKind::TimedOut => tcp_timeout(target, None),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => Finding::new(
            format!("no network route to {target}: this machine cannot reach that address."),
            "check the network path: VPN connected, VPC peering or private endpoint in place, \
             the address right.",
        ),
        io::ErrorKind::PermissionDenied => Finding::new(
            format!(
                "the operating system refused the connection to {target}: a local firewall blocks it."
            ),
            "allow outgoing connections to that port in this machine's firewall.",
        ),
        _ => Finding::new(
            format!(
                "TCP connection to {target} failed: {}.",
                redact_text(&error.to_string())
            ),
            "check that the host and port are right and reachable from this machine.",
        ),
    }
}

/// A TCP connection that got no answer at all.
pub(crate) fn tcp_timeout(target: &str, waited: Option<Duration>) -> Finding {
    let within = waited.map_or(String::new(), |w| format!(" within {} s", w.as_secs()));
    Finding::new(
        format!(
            "TCP connection to {target} got no answer{within}: packets are dropped on the way — a \
             firewall, a security group or an IP access list — or the host is down."
        ),
        "allow this machine's address to reach the port (MongoDB Atlas: Network Access → add \
         your current public IP), or check that the host is up.",
    )
}

/// What a failed TLS handshake means, from rustls' error (which tokio-rustls wraps in the
/// `io::Error`) or the I/O error kind, not from the message text.
pub(crate) fn tls_failed(target: &str, host: &str, error: &io::Error) -> Finding {
    use rustls::{AlertDescription, CertificateError, Error as Rustls};

    let text = error.to_string();
    let rustls = error.get_ref().and_then(|e| e.downcast_ref::<Rustls>());
    let not_tls = || {
        Finding::new(
            format!(
                "{target} did not answer the TLS handshake in TLS ({}): the server most likely \
                 does not use TLS.",
                redact_text(&text)
            ),
            "remove tls=true (or ssl=true) from the connection string, or enable TLS on the \
             server (net.tls.mode).",
        )
    };
    match rustls {
        Some(Rustls::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        )) => Finding::new(
            format!("the TLS certificate of {target} has expired."),
            "renew the server's certificate; until then clients cannot verify it (do not turn \
             certificate checks off).",
        ),
        Some(Rustls::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Finding::new(
            format!(
                "the TLS certificate of {target} is not valid for the name {host}: the name in \
                 the connection string is not one the certificate lists."
            ),
            "connect with a host name the certificate is issued for (not an IP address or an \
             alias), or add this name to the certificate's subject alternative names.",
        ),
        Some(Rustls::InvalidCertificate(CertificateError::UnknownIssuer)) => Finding::new(
            format!(
                "the TLS certificate of {target} is signed by a certificate authority this \
                 machine does not trust (a private CA or a self-signed certificate)."
            ),
            "give the CA certificate in the connection string: tlsCAFile=/path/to/ca.pem.",
        ),
        Some(Rustls::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate,
        )) => Finding::new(
            format!(
                "{target} rejected the TLS handshake ({}): it probably requires a client \
                 certificate.",
                redact_text(&text)
            ),
            "give the client certificate and key: tlsCertificateKeyFile=/path/to/client.pem.",
        ),
        // Bytes that are not TLS records (a plain MongoDB or HTTP server answering).
        Some(Rustls::InvalidMessage(_) | Rustls::InappropriateMessage { .. }) => not_tls(),
        // The server hung up on the ClientHello.
        None if matches!(
            error.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ) =>
        {
            not_tls()
        }
        _ => Finding::new(
            format!(
                "the TLS handshake with {target} failed: {}.",
                redact_text(&text)
            ),
            "check the server's TLS set-up and the tls* options in the connection string.",
        ),
    }
}

/// What a failed driver call (handshake, auth, ping, topology) means, from the error's class,
/// code and driver kind; `tls` says whether the connection uses TLS.
pub(crate) fn driver_failed(step: &str, target: &str, error: &Error, tls: bool) -> Finding {
    let text = failure::short_text(error);
    match Cause::of(error) {
        Cause::BadCredentials => failure::bad_credentials(&text),
        Cause::NeedsCredentials => failure::needs_credentials(target, &text),
        Cause::IncompatibleServer => failure::incompatible_server(target, &text),
        Cause::Closed if !tls => Finding::new(
            format!(
                "{target} closed the connection during the MongoDB {step}: the server may \
                 require TLS, or this port is not a MongoDB server."
            ),
            "add tls=true to the connection string if the server uses TLS (MongoDB Atlas \
             always does), and check the port is MongoDB's.",
        ),
        Cause::Closed => Finding::new(
            format!("{target} closed the connection during the MongoDB {step} ({text})."),
            "check the server's log for why it drops connections (connection limit, TLS \
             client-certificate rules, an IP access list).",
        ),
        // The TCP step reached the server: a selection or call that times out after that
        // means the server took the connection but did not answer.
        Cause::TimedOut | Cause::NoServer => Finding::new(
            format!(
                "{target} accepted the connection but did not complete the {step} in time \
                 ({text}): the server is overloaded or paused, or something in between swallows \
                 the traffic."
            ),
            "check the server's load and log; if a proxy or load balancer is in between, check \
             that it forwards MongoDB's protocol.",
        ),
        Cause::Other => Finding::new(
            format!("the {step} with {target} failed: {text}."),
            "read the message above; `keel config explain` shows the settings in force.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_srv_record_is_said_plainly() {
        let finding = srv_failed(
            "cluster0.example.invalid",
            "DNS error: no records found for Query { name: Name(\"_mongodb._tcp.x.\") }",
        );
        assert_eq!(
            finding.problem,
            "the SRV record _mongodb._tcp.cluster0.example.invalid could not be read (no such \
             record exists): a mongodb+srv:// string needs it to find the servers."
        );
    }

    #[test]
    fn a_refused_port_says_nothing_is_listening() {
        let error = io::Error::from(io::ErrorKind::ConnectionRefused);
        let finding = tcp_failed("127.0.0.1:1", &error);
        assert_eq!(
            finding.problem,
            "TCP connection to 127.0.0.1:1 refused: nothing is listening there — is mongod \
             running, and is the port right?"
        );
        assert!(finding.fix.contains("27017"));
    }

    #[test]
    fn a_silent_port_points_at_firewalls_and_access_lists() {
        let finding = tcp_failed("db:27017", &io::Error::from(io::ErrorKind::TimedOut));
        assert!(finding.problem.contains("firewall"), "{finding:?}");
        assert!(finding.fix.contains("Network Access"), "{finding:?}");
    }

    #[test]
    fn names_without_dots_get_the_container_hint() {
        let error = io::Error::other("failed to lookup address information");
        assert!(unresolvable("mongo1", &error).problem.contains("container"));
        assert!(
            !unresolvable("db.example.com", &error)
                .problem
                .contains("container")
        );
    }

    #[test]
    fn tls_failures_are_told_apart() {
        use rustls::{AlertDescription, CertificateError, Error as Rustls, InvalidMessage};
        let cases = [
            (
                Rustls::InvalidCertificate(CertificateError::Expired),
                "expired",
            ),
            (
                Rustls::InvalidCertificate(CertificateError::NotValidForName),
                "not valid for the name",
            ),
            (
                Rustls::InvalidCertificate(CertificateError::UnknownIssuer),
                "tlsCAFile",
            ),
            (
                Rustls::InvalidMessage(InvalidMessage::InvalidContentType),
                "does not use TLS",
            ),
            (
                Rustls::AlertReceived(AlertDescription::CertificateRequired),
                "tlsCertificateKeyFile",
            ),
        ];
        for (rustls, expected) in cases {
            // As tokio-rustls hands rustls' error over.
            let error = io::Error::new(io::ErrorKind::InvalidData, rustls);
            let finding = tls_failed("db:27017", "db", &error);
            let all = format!("{} {}", finding.problem, finding.fix);
            assert!(all.contains(expected), "{error}: {all}");
        }
        let hung_up = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert!(
            tls_failed("db:27017", "db", &hung_up)
                .problem
                .contains("does not use TLS")
        );
    }

    fn driver(kind: mongodb::error::ErrorKind) -> Error {
        Error::from_driver(mongodb::error::Error::from(kind))
    }

    #[test]
    fn driver_failures_are_explained_without_secrets() {
        let rejected = Error::from_facts(
            &keel_core::ErrorFacts::new(keel_core::DriverFailure::Authentication),
            "Authentication failed. (mongodb://u:hunter2@db/)",
        );
        let auth = driver_failed("authentication", "db:27017", &rejected, false);
        assert!(
            auth.problem
                .starts_with("the server rejected the user name or password")
        );
        assert!(!auth.problem.contains("hunter2"), "{auth:?}");

        let closed = driver(mongodb::error::ErrorKind::Io(
            io::Error::from(io::ErrorKind::UnexpectedEof).into(),
        ));
        let plain = driver_failed("handshake", "db:27017", &closed, false);
        assert!(plain.fix.contains("tls=true"), "{plain:?}");
        let unauthorized = keel_core::ErrorFacts::new(keel_core::DriverFailure::Command)
            .with_code(keel_core::codes::UNAUTHORIZED);
        let needs_auth = driver_failed(
            "check",
            "db:27017",
            &Error::from_facts(
                &unauthorized,
                "command listDatabases requires authentication",
            ),
            false,
        );
        assert!(
            needs_auth.problem.contains("requires authentication"),
            "{needs_auth:?}"
        );
        let selection = Error::from_facts(
            &keel_core::ErrorFacts::new(keel_core::DriverFailure::ServerSelection),
            "Server selection timeout",
        );
        let slow = driver_failed("handshake", "db:27017", &selection, true);
        assert!(slow.problem.contains("did not complete"), "{slow:?}");
    }
}
