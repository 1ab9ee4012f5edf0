//! The webhook sink: POSTs each alert as JSON, retrying with keel-retry's backoff.

use std::{fmt, time::Duration};

use futures_util::future::BoxFuture;
use keel_core::Secret;
use keel_retry::{Backoff, BackoffConfig, Jitter};
use tokio_rustls::TlsConnector;

use crate::{
    WebhookError,
    alert::{AlertEvent, AlertSink, SinkError, http::Endpoint},
};

/// How the webhook sink delivers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// Attempts per event (first try included). Default 5: with the default backoff that spans
    /// about half a minute, enough for a receiver restarting.
    pub attempts: u32,
    /// Delays between attempts. Default 500 ms doubling up to 10 s, full jitter.
    pub backoff: BackoffConfig,
    /// Limit of one attempt (connect, send, read the status). Default 5 s.
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer …` when set. Never logged.
    pub bearer: Option<Secret<String>>,
    /// CA certificates (PEM) to trust for an `https://` receiver, in addition to the public web
    /// roots: for a receiver behind a private CA. Default none.
    pub ca_pem: Option<String>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: BackoffConfig {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(10),
                multiplier: 2.0,
                jitter: Jitter::Full,
            },
            timeout: Duration::from_secs(5),
            bearer: None,
            ca_pem: None,
        }
    }
}

/// POSTs every alert event as JSON ([`AlertEvent::to_json`]) to a URL, retrying connection
/// failures, timeouts, `429` and `5xx` answers; other `4xx` answers are final.
///
/// The URL's path is never logged or shown in errors (webhook URLs often embed a secret).
///
/// ```
/// use keel_health::{WebhookConfig, WebhookSink};
/// let sink = WebhookSink::new("https://hooks.example.com/T000/B000/XXXX", WebhookConfig::default())?;
/// assert!(!format!("{sink:?}").contains("XXXX"));
/// # Ok::<(), keel_health::WebhookError>(())
/// ```
#[derive(Clone)]
pub struct WebhookSink {
    endpoint: Endpoint,
    /// Built once, for an `https://` endpoint only.
    tls: Option<TlsConnector>,
    backoff: Backoff,
    config: WebhookConfig,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("endpoint", &self.endpoint)
            .field("attempts", &self.config.attempts)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink posting to `url` (`http://` or `https://`). Checks the URL, the backoff and the
    /// CA certificates here, so a mistake shows at start-up rather than at the first alert.
    pub fn new(url: &str, config: WebhookConfig) -> Result<Self, WebhookError> {
        let endpoint = Endpoint::parse(url)?;
        let backoff = Backoff::new(config.backoff)
            .map_err(|e| WebhookError::InvalidBackoff(e.to_string()))?;
        let tls = if endpoint.tls {
            Some(super::http::tls_connector(config.ca_pem.as_deref())?)
        } else if config.ca_pem.is_some() {
            return Err(WebhookError::InvalidCaCertificate(
                "set for an http:// URL, which does not use TLS: use https:// or drop the CA"
                    .to_owned(),
            ));
        } else {
            None
        };
        Ok(Self {
            endpoint,
            tls,
            backoff,
            config,
        })
    }
}

impl AlertSink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn deliver(&self, event: AlertEvent) -> BoxFuture<'static, Result<(), SinkError>> {
        let sink = self.clone();
        Box::pin(async move {
            let body = event.to_json().to_string().into_bytes();
            let attempts = sink.config.attempts.max(1);
            let bearer = sink.config.bearer.as_ref().map(|s| s.expose().clone());
            let mut previous = Duration::ZERO;
            let mut detail = String::new();
            for attempt in 1..=attempts {
                let outcome = super::http::post_json(
                    &sink.endpoint,
                    sink.tls.as_ref(),
                    bearer.as_deref(),
                    &body,
                    sink.config.timeout,
                )
                .await;
                let retryable = match outcome {
                    Ok(status) if (200..300).contains(&status) => return Ok(()),
                    Ok(status) => {
                        detail = format!("HTTP {status}");
                        status == 429 || status >= 500
                    }
                    Err(err) => {
                        detail = err;
                        true
                    }
                };
                if !retryable || attempt == attempts {
                    return Err(SinkError::Failed {
                        attempts: attempt,
                        detail,
                    });
                }
                let delay = sink
                    .backoff
                    .delay(attempt - 1, previous, rand::random::<f64>());
                previous = delay;
                tracing::debug!(
                    target: "keel_health",
                    attempt,
                    detail = %detail,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "keel webhook delivery failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
            Err(SinkError::Failed { attempts, detail })
        })
    }
}
