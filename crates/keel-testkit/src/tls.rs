//! TLS: the server's certificate and key ([`TlsIdentity`]), a generated self-signed pair for
//! tests, and the rustls acceptor (ring provider, as the mongodb driver's `rustls-tls` uses).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::TestkitError;

/// A server certificate chain and private key, in PEM, plus (for a generated pair) the CA
/// certificate clients must trust.
///
/// ```
/// use keel_testkit::TlsIdentity;
///
/// let identity = TlsIdentity::self_signed().unwrap();
/// assert!(identity.ca_pem().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
/// // Debug output never shows the private key.
/// assert!(!format!("{identity:?}").contains("PRIVATE KEY"));
/// ```
#[derive(Clone)]
pub struct TlsIdentity {
    cert_pem: String,
    key_pem: String,
    ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("has_ca", &self.ca_pem.is_some())
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> TestkitError {
    TestkitError::InvalidConfig(format!("TLS: {what}: {e}"))
}

impl TlsIdentity {
    /// A new test CA and a server certificate it signed, for `localhost`, `127.0.0.1` and
    /// `::1`. Trust [`ca_pem`](Self::ca_pem) in the client (`tlsCAFile`).
    pub fn self_signed() -> Result<Self, TestkitError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let gen_err = |e: rcgen::Error| tls_err("cannot generate a certificate", e);
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "keel-testkit test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().map_err(gen_err)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(gen_err)?;
        let issuer = Issuer::new(ca, ca_key);

        let names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        let mut leaf = CertificateParams::new(names).map_err(gen_err)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().map_err(gen_err)?;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(gen_err)?;
        Ok(Self {
            cert_pem: leaf_cert.pem(),
            key_pem: leaf_key.serialize_pem(),
            ca_pem: Some(ca_cert.pem()),
        })
    }

    /// A certificate chain and private key in PEM (checked when the server starts).
    pub fn from_pem(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        Self {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            ca_pem: None,
        }
    }

    /// Reads a PEM certificate chain and private key (`--tls-cert`, `--tls-key`).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TestkitError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| TestkitError::Persistence {
                path: p.to_owned(),
                source,
            })
        };
        Ok(Self::from_pem(read(cert)?, read(key)?))
    }

    /// The server certificate (chain), PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM (to write a key file for another process).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate to trust, PEM (`Some` for [`self_signed`](Self::self_signed)).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A rustls server configuration for this identity (ring provider, safe default protocol
    /// versions, no client certificates), for a test's own TLS endpoint, such as a webhook
    /// receiver, that clients trusting [`ca_pem`](Self::ca_pem) should accept.
    ///
    /// ```
    /// use keel_testkit::TlsIdentity;
    /// let identity = TlsIdentity::self_signed()?;
    /// let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config()?);
    /// # drop(acceptor);
    /// # Ok::<(), keel_testkit::TestkitError>(())
    /// ```
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TestkitError> {
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_err("cannot read the certificate PEM", e))?;
        if certs.is_empty() {
            return Err(tls_err("certificate PEM", "no certificate found"));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| tls_err("cannot read the private key PEM", e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| tls_err("certificate and key do not match", e))?;
        Ok(Arc::new(config))
    }

    /// The rustls acceptor for this identity.
    pub(crate) fn acceptor(&self) -> Result<Acceptor, TestkitError> {
        Ok(Acceptor(TlsAcceptor::from(self.server_config()?)))
    }
}

/// The server's TLS acceptor (a `Debug`-able handle).
#[derive(Clone)]
pub(crate) struct Acceptor(pub(crate) TlsAcceptor);

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acceptor")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_make_an_acceptor_and_garbage_does_not() {
        let id = TlsIdentity::self_signed().unwrap();
        assert!(id.acceptor().is_ok());
        assert!(id.key_pem().contains("PRIVATE KEY"));
        let other = TlsIdentity::self_signed().unwrap();
        let mismatched = TlsIdentity::from_pem(id.cert_pem(), other.key_pem());
        assert!(matches!(
            mismatched.acceptor(),
            Err(TestkitError::InvalidConfig(_))
        ));
        for (cert, key) in [("", id.key_pem()), (id.cert_pem(), "nonsense")] {
            assert!(TlsIdentity::from_pem(cert, key).acceptor().is_err());
        }
    }
}
