//! Step 4, `tls`: a TLS handshake of the doctor's own with the first reachable host, when the
//! connection uses TLS, to say why it fails.

use mongodb::options::Tls;

use super::super::Check;
use super::super::advice::{self, Finding};
use super::super::tls::{self, TlsError};
use super::Diagnosis;

impl Diagnosis {
    pub(super) async fn tls(&mut self) -> Check {
        let Some(options) = &self.options else {
            return Check::skip("tls", "no driver options");
        };
        let Some(target) = self.first_reachable().cloned() else {
            return Check::skip("tls", "no reachable host");
        };
        let tls_options = match &options.tls {
            Some(Tls::Enabled(tls_options)) => tls_options.clone(),
            _ => {
                if target.host.ends_with(".mongodb.net") {
                    return Check::fail(
                        "tls",
                        Finding {
                            problem: "MongoDB Atlas accepts only TLS connections, and this \
                                      connection string turns TLS off."
                                .to_owned(),
                            fix: "remove tls=false (or ssl=false), or use the mongodb+srv:// \
                                  string Atlas gives."
                                .to_owned(),
                        },
                    );
                }
                let check = Check::pass("tls", "off: the connection string does not ask for TLS");
                let local = self
                    .targets
                    .iter()
                    .flat_map(|t| &t.addrs)
                    .all(|addr| addr.ip().is_loopback());
                return if local {
                    check
                } else {
                    check.note(
                        "traffic is not encrypted: fine on a private network, not across the \
                         internet (add tls=true when the server supports it)",
                    )
                };
            }
        };
        if tls_options.allow_invalid_certificates == Some(true) {
            return Check::warn(
                "tls",
                Finding {
                    problem: "certificate checks are off (tlsAllowInvalidCertificates=true): \
                              traffic is encrypted, but anyone in the path could pose as the \
                              server."
                        .to_owned(),
                    fix: "remove tlsAllowInvalidCertificates and, for a private CA, give it with \
                          tlsCAFile=/path/to/ca.pem."
                        .to_owned(),
                },
            );
        }
        let Some(addr) = target.connected else {
            return Check::skip("tls", "no reachable host");
        };
        match tls::handshake(&target.host, addr, &tls_options, self.limit).await {
            Ok(negotiated) => {
                let client = if negotiated.client_certificate {
                    ", client certificate offered"
                } else {
                    ""
                };
                Check::pass(
                    "tls",
                    format!(
                        "{} with {}: certificate verified for {} ({}{client})",
                        negotiated.version,
                        target.label(),
                        target.host,
                        negotiated.cipher
                    ),
                )
            }
            Err(TlsError::Setup(problem)) => Check::fail(
                "tls",
                Finding {
                    problem: format!("{problem}."),
                    fix: "correct the path or the file in the connection string's tls options; \
                          the driver reads the same file."
                        .to_owned(),
                },
            ),
            Err(TlsError::Timeout) => Check::fail(
                "tls",
                Finding {
                    problem: format!(
                        "{} did not answer the TLS handshake within {} s: the server most likely \
                         does not use TLS (a plain MongoDB server waits silently for more bytes).",
                        target.label(),
                        self.limit.as_secs()
                    ),
                    fix: "remove tls=true (or ssl=true) from the connection string, or enable TLS \
                          on the server; if it does use TLS, check that nothing in between holds \
                          the connection."
                        .to_owned(),
                },
            ),
            Err(TlsError::Handshake(error)) => Check::fail(
                "tls",
                advice::tls_failed(&target.label(), &target.host, &error),
            ),
        }
    }
}
