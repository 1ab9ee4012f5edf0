//! [`KeelConfig::to_client_options`]: the mapping onto the driver's `ClientOptions`.

use mongodb::options::{ClientOptions, Tls, TlsOptions};

use crate::config::KeelConfig;
use crate::error::{ConfigError, ConfigErrors};
use crate::settings::TlsMode;
use keel_core::redact::redact_uri;

impl KeelConfig {
    /// Validates, parses the connection string and applies every driver setting on top.
    ///
    /// Async because the driver resolves `mongodb+srv://` names (SRV and TXT records) while
    /// parsing; a plain `mongodb://` string needs no network. The connection string's own options
    /// were already loaded into the config (source `uri`), so applying Keel's values keeps them
    /// unless a file, variable or override replaced them; `server-default` leaves them alone.
    /// Layer-only settings (retry, breaker, attempt timeout, checkout wait, lazy connect) are
    /// not driver options and are read from the config by the layers.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let config = keel_config::KeelConfig::development("mongodb://localhost:27017/?replicaSet=rs0")?;
    /// let options = config.to_client_options().await?;
    /// assert_eq!(options.max_pool_size, Some(10));
    /// assert_eq!(options.repl_set_name.as_deref(), Some("rs0"));
    /// # Ok::<(), keel_config::ConfigErrors>(()) }).unwrap();
    /// ```
    pub async fn to_client_options(&self) -> Result<ClientOptions, ConfigErrors> {
        self.validate()?;
        let mut options = ClientOptions::parse(self.uri.expose())
            .await
            .map_err(|error| {
                ConfigError::new(
                    "uri",
                    format!(
                        "the driver could not use the connection string ({})",
                        self.scrub(&error.kind.to_string())
                    ),
                    "check the host names (mongodb+srv:// needs working DNS) and the options",
                )
                .with_value(redact_uri(self.uri.expose()))
            })?;
        self.apply(&mut options);
        Ok(options)
    }

    fn apply(&self, options: &mut ClientOptions) {
        if let Some(name) = &self.app_name {
            options.app_name = Some(name.clone());
        }
        options.max_pool_size = Some(self.pool.max_size);
        options.min_pool_size = Some(self.pool.min_size);
        options.max_connecting = Some(self.pool.max_connecting);
        options.max_idle_time = Some(self.pool.max_idle);
        options.connect_timeout = Some(self.timeouts.connect);
        options.server_selection_timeout = Some(self.timeouts.server_selection);
        options.heartbeat_freq = Some(self.heartbeat);
        options.compressors = (!self.compressors.is_empty())
            .then(|| self.compressors.iter().map(|c| c.to_driver()).collect());
        self.apply_credential(options);
        self.apply_tls(options);
        if let Some(level) = self.read_concern.to_driver() {
            options.read_concern = Some(level);
        }
        let mut write_concern = options.write_concern.take().unwrap_or_default();
        if let Some(w) = self.write_concern.w.to_driver() {
            write_concern.w = Some(w);
        }
        if let Some(journal) = self.write_concern.journal {
            write_concern.journal = Some(journal);
        }
        options.write_concern = (write_concern != Default::default()).then_some(write_concern);
    }

    fn apply_credential(&self, options: &mut ClientOptions) {
        if self.username.is_none() && self.password.is_none() {
            return;
        }
        let mut credential = options.credential.take().unwrap_or_default();
        if let Some(username) = &self.username {
            credential.username = Some(username.clone());
        }
        if let Some(password) = &self.password {
            credential.password = Some(password.expose().clone());
        }
        options.credential = Some(credential);
    }

    fn apply_tls(&self, options: &mut ClientOptions) {
        let tls = &self.tls;
        let wants_tls =
            tls.ca_file.is_some() || tls.cert_key_file.is_some() || tls.allow_invalid_certificates;
        match tls.mode {
            TlsMode::Off => options.tls = Some(Tls::Disabled),
            TlsMode::FromUri if !wants_tls => {}
            TlsMode::FromUri | TlsMode::On => {
                let mut tls_options = match options.tls.take() {
                    Some(Tls::Enabled(existing)) => existing,
                    _ => TlsOptions::default(),
                };
                if let Some(path) = &tls.ca_file {
                    tls_options.ca_file_path = Some(path.clone());
                }
                if let Some(path) = &tls.cert_key_file {
                    tls_options.cert_key_file_path = Some(path.clone());
                }
                if tls.allow_invalid_certificates {
                    tls_options.allow_invalid_certificates = Some(true);
                }
                // `allow_invalid_hostnames` exists in the driver only with openssl; validation
                // refuses the setting, so there is nothing to map.
                options.tls = Some(Tls::Enabled(tls_options));
            }
        }
    }
}
