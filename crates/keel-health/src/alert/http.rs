//! A minimal HTTP/1.1 POST client for the webhook sink: one request per connection, plain TCP
//! or rustls. Alerts are rare, so pooling and HTTP/2 would buy nothing but dependencies.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        self,
        pki_types::{CertificateDer, pem::PemObject},
    },
};

use crate::WebhookError;

/// Where a webhook posts to. `Debug` shows scheme, host and port only: the path often holds a
/// secret (Slack-style URLs).
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:{}/…",
            if self.tls { "https" } else { "http" },
            self.host,
            self.port
        )
    }
}

impl Endpoint {
    /// Parses `http://host[:port][/path]` or `https://…`; no user info, no fragment.
    pub(crate) fn parse(url: &str) -> Result<Self, WebhookError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(WebhookError::InvalidUrl("the scheme must be http or https"));
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(WebhookError::InvalidUrl(
                "user info is not supported; use WebhookConfig::bearer",
            ));
        }
        if path.contains('#') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(WebhookError::InvalidUrl(
                "the path holds a fragment or a space",
            ));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or(WebhookError::InvalidUrl("an IPv6 host lacks its ']'"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => parse_port(port)?,
                None if after.is_empty() => default_port,
                None => return Err(WebhookError::InvalidUrl("junk after the IPv6 host")),
            };
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), parse_port(port)?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(WebhookError::InvalidUrl("the host is empty"));
        }
        let path = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self {
            tls,
            host,
            port,
            path,
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            _ => format!("{host}:{}", self.port),
        }
    }
}

fn parse_port(text: &str) -> Result<u16, WebhookError> {
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(WebhookError::InvalidUrl(
            "the port is not a number from 1 to 65535",
        )),
    }
}

/// The TLS client set-up: the webpki roots plus the CA certificates in `extra_roots_pem` (for
/// a receiver behind a private CA), ring provider (as the driver uses).
pub(crate) fn tls_connector(extra_roots_pem: Option<&str>) -> Result<TlsConnector, WebhookError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_roots_pem {
        let invalid = |why: String| WebhookError::InvalidCaCertificate(why);
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| invalid(format!("not PEM ({e})")))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("not a usable CA certificate ({e})")))?;
            added += 1;
        }
        if added == 0 {
            return Err(invalid(
                "no `-----BEGIN CERTIFICATE-----` block found".to_owned(),
            ));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| WebhookError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Posts `body` as JSON and returns the response status code. Goes through `tls` when given
/// (the sink gives it exactly for `https://` endpoints).
pub(crate) async fn post_json(
    endpoint: &Endpoint,
    tls: Option<&TlsConnector>,
    bearer: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<u16, String> {
    let attempt = async {
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        match tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
                    .map_err(|_| "the host is not a valid TLS server name".to_owned())?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                exchange(stream, endpoint, bearer, body).await
            }
            None => exchange(tcp, endpoint, bearer, body).await,
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no response within {timeout:?}"))?
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    endpoint: &Endpoint,
    bearer: Option<&str>,
    body: &[u8],
) -> Result<u16, String> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: keel-health\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        endpoint.path,
        endpoint.host_header(),
        body.len()
    );
    if let Some(token) = bearer {
        head.push_str("Authorization: Bearer ");
        head.push_str(token);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let io = |e: std::io::Error| format!("I/O: {}", e.kind());
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    // Only the status line matters; read until it is complete (bounded).
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        if buf.len() > 4096 {
            return Err("the status line is too long".to_owned());
        }
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err("the connection closed before a response".to_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status(&buf).ok_or_else(|| "the response is not HTTP/1.x".to_owned())
}

fn parse_status(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..response.len().min(64))?).ok()?;
    let mut parts = text.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_endpoints() {
        let e = Endpoint::parse("https://hooks.example.com/services/T0/B0/secret").unwrap();
        assert!(e.tls);
        assert_eq!((e.host.as_str(), e.port), ("hooks.example.com", 443));
        assert_eq!(e.path, "/services/T0/B0/secret");
        assert!(!format!("{e:?}").contains("secret"));
        let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (e.port, e.path.as_str(), e.host_header().as_str()),
            (8080, "/", "127.0.0.1:8080")
        );
        let e = Endpoint::parse("http://[::1]:9000/x?y=1").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("::1", 9000, "/x?y=1")
        );
        assert_eq!(e.host_header(), "[::1]:9000");
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        for url in [
            "ftp://x/",
            "http://",
            "http://user:pw@host/",
            "http://host:0/",
            "http://host:99999/",
            "http://host:x/",
            "http://[::1/",
            "http://host/a b",
            "http://host/#frag",
            "",
        ] {
            assert!(Endpoint::parse(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 500\r\n"), Some(500));
        assert_eq!(parse_status(b"SSH-2.0\r\n"), None);
    }
}
