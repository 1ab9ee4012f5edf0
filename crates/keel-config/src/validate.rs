//! [`KeelConfig::validate`]: every problem at once — the checks of this crate's own sections and
//! of settings across sections, and each layer crate's validation of its own section.

use std::path::Path;
use std::time::Duration;

use keel_core::redact::{REDACTED, redact_text};
use mongodb::options::ConnectionString;

use crate::Profile;
use crate::config::KeelConfig;
use crate::duration::format_duration;
use crate::error::{ConfigError, ConfigErrors};
#[cfg(feature = "health")]
use crate::sections::HEALTH;
use crate::sections::{BREAKER, POOL, RETRY, Section};
use crate::settings::TlsMode;
use crate::source::Source;
use keel_core::redact::redact_uri;

/// The driver rejects a shorter heartbeat.
const MIN_HEARTBEAT: Duration = Duration::from_millis(500);

impl KeelConfig {
    /// Checks the whole configuration and returns every problem found, in field order.
    ///
    /// [`KeelConfig::load`] already calls it; call it again after changing fields in code.
    ///
    /// ```
    /// let mut config = keel_config::KeelConfig::development("mongodb://localhost")?;
    /// config.pool.min_size = 50;
    /// let errors = config.validate().unwrap_err();
    /// assert!(errors.mentions("pool.min_size"));
    /// # Ok::<(), keel_config::ConfigErrors>(())
    /// ```
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        self.check_uri_and_credentials(&mut errors);
        self.check_driver_settings(&mut errors);
        self.check_section(&POOL, &mut errors);
        self.check_timeouts(&mut errors);
        self.check_tls(&mut errors);
        self.check_section(&RETRY, &mut errors);
        self.check_section(&BREAKER, &mut errors);
        #[cfg(feature = "health")]
        self.check_section(&HEALTH, &mut errors);
        let errors = errors
            .into_iter()
            .map(|error| self.annotate(error))
            .collect();
        ConfigErrors::from_vec(errors)
    }

    /// Says which layer set the offending value, so the user knows where to fix it.
    fn annotate(&self, error: ConfigError) -> ConfigError {
        let Some(index) = crate::fields::index_of_path(error.field()) else {
            return error;
        };
        let field = &crate::fields::fields()[index];
        let explained = self.explain();
        let Some(row) = explained.rows().get(index) else {
            return error;
        };
        let origin = match row.source() {
            Source::Default => "Keel's default".to_owned(),
            Source::Profile => format!("the {} profile", self.profile),
            Source::Preset => format!("the {} preset", self.preset),
            Source::Uri => "the connection string".to_owned(),
            Source::File => "the TOML file".to_owned(),
            Source::Env => field.env().to_owned(),
            Source::Override => "an override".to_owned(),
            Source::Code => "code".to_owned(),
        };
        error.with_origin(origin)
    }

    /// Removes anything secret from a driver message about this config's connection string.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut clean = redact_text(message);
        let user_info = self.uri.user_info().unwrap_or_default();
        let mut secrets: Vec<&str> = vec![user_info];
        secrets.extend(user_info.split_once(':').map(|(_, password)| password));
        secrets.extend(self.password.as_ref().map(|p| p.expose().as_str()));
        for secret in secrets.into_iter().filter(|s| s.len() >= 3) {
            clean = clean.replace(secret, REDACTED);
        }
        clean
    }

    fn check_uri_and_credentials(&self, errors: &mut Vec<ConfigError>) {
        let shown = redact_uri(self.uri.expose());
        let parsed = match ConnectionString::parse(self.uri.expose()) {
            Ok(parsed) => parsed,
            Err(error) => {
                let message = self.scrub(&error.kind.to_string());
                let fix = if message.contains("invalid option") {
                    "correct or remove the option (the driver names a similar one above), or set it as a Keel setting instead"
                } else {
                    "write it as mongodb://host:27017/ or mongodb+srv://cluster.example.net/, with special characters in the user name or password percent-encoded"
                };
                errors.push(
                    ConfigError::new(
                        "uri",
                        format!("not a valid MongoDB connection string ({message})"),
                        fix,
                    )
                    .with_value(shown),
                );
                return;
            }
        };
        let insecure_uri = matches!(
            &parsed.tls,
            Some(mongodb::options::Tls::Enabled(tls)) if tls.allow_invalid_certificates == Some(true)
        );
        // Normally the option arrives through the connection-string layer and the TLS check below
        // reports it; this catches a connection string replaced in code after loading.
        if insecure_uri
            && !self.tls.allow_invalid_certificates
            && self.profile == Profile::Production
        {
            errors.push(
                ConfigError::new(
                    "uri",
                    "the connection string allows invalid certificates (tlsInsecure or tlsAllowInvalidCertificates), which the production profile forbids",
                    "remove that option and set tls.ca_file to the CA that signed the server certificate",
                )
                .with_value(shown.clone()),
            );
        }
        let uri_user = parsed
            .credential
            .as_ref()
            .and_then(|c| c.username.as_deref());
        let uri_password = parsed.credential.as_ref().and_then(|c| c.password.as_ref());
        if uri_password.is_some() && self.password.is_some() {
            errors.push(
                ConfigError::new(
                    "password",
                    "a password is given both in the connection string and separately",
                    "keep one: remove user:password@ from uri, or unset password (KEEL_PASSWORD)",
                )
                .with_hidden_value(),
            );
        }
        if let (Some(in_uri), Some(separate)) = (uri_user, self.username.as_deref())
            && in_uri != separate
        {
            errors.push(
                ConfigError::new(
                    "username",
                    "differs from the user name in the connection string",
                    "keep one: remove the user from uri, or unset username (KEEL_USERNAME)",
                )
                .with_value(separate),
            );
        }
        if self.password.is_some() && uri_user.is_none() && self.username.is_none() {
            errors.push(
                ConfigError::new(
                    "password",
                    "a password is given without a user name",
                    "set username (KEEL_USERNAME) too",
                )
                .with_hidden_value(),
            );
        }
    }

    fn check_driver_settings(&self, errors: &mut Vec<ConfigError>) {
        if self.heartbeat < MIN_HEARTBEAT {
            errors.push(
                ConfigError::new(
                    "heartbeat",
                    "shorter than the driver's minimum of 500ms",
                    "set it to 500ms or more",
                )
                .with_value(format_duration(self.heartbeat).to_string()),
            );
        }
        if self.app_name.as_ref().is_some_and(|name| name.len() > 128) {
            errors.push(ConfigError::new(
                "app_name",
                "longer than the 128 bytes the server accepts",
                "use a shorter name",
            ));
        }
    }

    /// The layer crate's own validation of its section, with the field named by its path.
    fn check_section(&self, section: &Section, errors: &mut Vec<ConfigError>) {
        for (field, value, problem, fix) in (section.problems)(self) {
            errors.push(
                ConfigError::new(format!("{}.{field}", section.name), problem, fix)
                    .with_value(value),
            );
        }
    }

    fn check_timeouts(&self, errors: &mut Vec<ConfigError>) {
        let t = &self.timeouts;
        for (field, value, example) in [
            ("timeouts.connect", t.connect, "10s"),
            ("timeouts.server_selection", t.server_selection, "15s"),
            ("timeouts.attempt", t.attempt, "20s"),
            ("timeouts.checkout_wait", t.checkout_wait, "5s"),
            ("timeouts.deadline", t.deadline, "60s"),
            ("timeouts.election_wait", t.election_wait, "12s"),
        ] {
            zero_duration(
                errors,
                field,
                value,
                "a timeout of zero fails every request at once (or, in the driver, never times out)",
                example,
            );
        }
        if !t.deadline.is_zero() && t.attempt > t.deadline {
            errors.push(
                ConfigError::new(
                    "timeouts.attempt",
                    format!(
                        "longer than timeouts.deadline ({})",
                        format_duration(t.deadline)
                    ),
                    "make one attempt shorter than the overall deadline",
                )
                .with_value(format_duration(t.attempt).to_string()),
            );
        }
        // Zero is a valid grace: fail at once as soon as every member is known to be down.
        if !t.election_wait.is_zero() && t.outage_grace > t.election_wait {
            errors.push(
                ConfigError::new(
                    "timeouts.outage_grace",
                    format!(
                        "longer than timeouts.election_wait ({})",
                        format_duration(t.election_wait)
                    ),
                    "a deployment with no member reachable should not be waited for longer than an election; set it to about 1s",
                )
                .with_value(format_duration(t.outage_grace).to_string()),
            );
        }
        if !t.attempt.is_zero() && t.checkout_wait > t.attempt {
            errors.push(
                ConfigError::new(
                    "timeouts.checkout_wait",
                    format!(
                        "longer than timeouts.attempt ({})",
                        format_duration(t.attempt)
                    ),
                    "make the checkout wait shorter than one attempt",
                )
                .with_value(format_duration(t.checkout_wait).to_string()),
            );
        }
    }

    fn check_tls(&self, errors: &mut Vec<ConfigError>) {
        let tls = &self.tls;
        for (field, path) in [
            ("tls.ca_file", &tls.ca_file),
            ("tls.cert_key_file", &tls.cert_key_file),
        ] {
            let Some(path) = path else { continue };
            if tls.mode == TlsMode::Off {
                errors.push(
                    ConfigError::new(
                        field,
                        "a TLS file is set but tls.mode is off",
                        "set tls.mode = \"on\", or remove the file setting",
                    )
                    .with_value(path.display().to_string()),
                );
            } else if !Path::new(path).is_file() {
                errors.push(
                    ConfigError::new(field, "the file does not exist", "give the path of an existing PEM file (relative paths start at the working directory)")
                        .with_value(path.display().to_string()),
                );
            }
        }
        if tls.allow_invalid_certificates && self.profile == Profile::Production {
            errors.push(
                ConfigError::new(
                    "tls.allow_invalid_certificates",
                    "not allowed in the production profile: it accepts any server, including an attacker's",
                    "set tls.ca_file to the CA that signed the server certificate, or use the development or testing profile",
                )
                .with_value("true"),
            );
        }
        if tls.allow_invalid_hostnames {
            let (problem, fix) = if self.profile == Profile::Development {
                (
                    "not supported: Keel builds the driver with rustls, which cannot skip only the host name check",
                    "connect with the host name in the certificate, or set tls.allow_invalid_certificates = true (development only), which skips all checks",
                )
            } else {
                (
                    "allowed in the development profile only, and even there unsupported by the driver's rustls backend",
                    "connect with the host name in the certificate",
                )
            };
            errors.push(
                ConfigError::new("tls.allow_invalid_hostnames", problem, fix).with_value("true"),
            );
        }
    }
}

fn zero_duration(
    errors: &mut Vec<ConfigError>,
    field: &str,
    value: Duration,
    problem: &str,
    example: &str,
) {
    if value.is_zero() {
        errors.push(
            ConfigError::new(
                field,
                problem,
                format!("set a positive duration such as \"{example}\""),
            )
            .with_value("0s"),
        );
    }
}
