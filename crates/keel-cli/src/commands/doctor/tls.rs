//! The doctor's own TLS handshake, configured like the driver's (same roots, same CA file and
//! client certificate handling), so it can say *why* TLS fails instead of "connection closed".

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mongodb::options::TlsOptions;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What a successful handshake agreed on.
#[derive(Debug)]
pub(crate) struct Negotiated {
    /// `TLSv1_3` and the like.
    pub(crate) version: String,
    /// The cipher suite.
    pub(crate) cipher: String,
    /// Whether a client certificate was offered.
    pub(crate) client_certificate: bool,
}

/// Why the handshake could not even start (local set-up), as opposed to failing on the wire.
#[derive(Debug)]
pub(crate) enum TlsError {
    /// A file named in the options cannot be used; the text says which and why.
    Setup(String),
    /// The handshake with the server failed.
    Handshake(io::Error),
    /// The server did not finish the handshake in time.
    Timeout,
}

/// Connects to `addr` and runs a TLS handshake for `host`, as the driver would.
pub(crate) async fn handshake(
    host: &str,
    addr: SocketAddr,
    options: &TlsOptions,
    limit: Duration,
) -> Result<Negotiated, TlsError> {
    let (config, client_certificate) = client_config(options)?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| TlsError::Setup(format!("{host} is not a valid TLS server name: {e}")))?;
    let connector = TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = TcpStream::connect(addr).await?;
        connector.connect(name, tcp).await
    };
    let stream = tokio::time::timeout(limit, attempt)
        .await
        .map_err(|_| TlsError::Timeout)?
        .map_err(TlsError::Handshake)?;
    let (_, connection) = stream.get_ref();
    Ok(Negotiated {
        version: connection
            .protocol_version()
            .map_or_else(|| "unknown".to_owned(), |v| format!("{v:?}")),
        cipher: connection
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite())),
        client_certificate,
    })
}

/// The client configuration the driver would build from `options` (without the "allow invalid"
/// switches, which the doctor reports instead of using).
fn client_config(options: &TlsOptions) -> Result<(ClientConfig, bool), TlsError> {
    let mut roots = RootCertStore::empty();
    match &options.ca_file_path {
        Some(path) => {
            let certificates = read_certificates(path, "tlsCAFile")?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(TlsError::Setup(format!(
                    "tlsCAFile {} holds no usable CA certificate",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(format!("the TLS library cannot start: {e}")))?
            .with_root_certificates(roots);
    let Some(path) = &options.cert_key_file_path else {
        return Ok((builder.with_no_client_auth(), false));
    };
    let chain = read_certificates(path, "tlsCertificateKeyFile")?;
    // An encrypted key (tlsCertificateKeyFilePassword) cannot be read here: say so rather than
    // guess, since the driver may still read it.
    let key = PrivateKeyDer::from_pem_file(path).map_err(|e| {
        TlsError::Setup(format!(
            "tlsCertificateKeyFile {} holds no private key the doctor can read ({e}; an \
             encrypted key is not supported here)",
            path.display()
        ))
    })?;
    let config = builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsError::Setup(format!("the client certificate cannot be used: {e}")))?;
    Ok((config, true))
}

fn read_certificates(path: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Setup(format!("cannot read {option} {}: {e}", path.display())))?
        .collect();
    let certificates = certificates
        .map_err(|e| TlsError::Setup(format!("{option} {} is not PEM: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(TlsError::Setup(format!(
            "{option} {} holds no certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_a_setup_error_naming_the_option() {
        let options = TlsOptions::builder()
            .ca_file_path(std::path::PathBuf::from("/nonexistent/ca.pem"))
            .build();
        match client_config(&options) {
            Err(TlsError::Setup(text)) => {
                assert!(text.contains("tlsCAFile /nonexistent/ca.pem"), "{text}");
            }
            other => panic!("expected a setup error, got {:?}", other.map(|(_, c)| c)),
        }
    }

    #[test]
    fn the_default_trusts_the_public_roots_without_a_client_certificate() {
        let (config, client_certificate) =
            client_config(&TlsOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!client_certificate);
        assert!(!config.client_auth_cert_resolver.has_certs());
    }

    #[tokio::test]
    async fn a_plain_text_server_is_not_mistaken_for_tls() {
        // A listener that answers the ClientHello with bytes that are not TLS.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0_u8; 512];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
            }
        });
        let result = handshake(
            "localhost",
            addr,
            &TlsOptions::default(),
            Duration::from_secs(5),
        )
        .await;
        let Err(TlsError::Handshake(error)) = result else {
            panic!("expected a handshake error, got {result:?}");
        };
        let finding = super::super::advice::tls_failed("localhost:x", "localhost", &error);
        assert!(
            finding.problem.contains("does not use TLS"),
            "{error} → {finding:?}"
        );
    }
}
