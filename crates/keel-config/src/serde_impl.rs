//! `serde::Deserialize` for [`KeelConfig`], so it can sit inside an application's own config.

use serde::{Deserialize, Deserializer};

use crate::KeelConfig;

/// Reads the same keys as a Keel TOML file, from any self-describing format, on top of the
/// defaults of the profile and preset it names; the result is validated and its values show
/// as source `file` in `explain`. Errors carry the same redacted text as [`crate::ConfigErrors`].
///
/// There is deliberately no `Serialize`: a config holds credentials.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct AppConfig {
///     listen: String,
///     mongo: keel_config::KeelConfig,
/// }
///
/// let app: AppConfig = toml::from_str(r#"
///     listen = "0.0.0.0:8080"
///     [mongo]
///     profile = "testing"
///     uri = "mongodb://db:27017"
///     pool.max_size = 12
/// "#).unwrap();
/// assert_eq!(app.mongo.pool.max_size, 12);
/// assert_eq!(app.mongo.profile, keel_config::Profile::Testing);
/// ```
impl<'de> Deserialize<'de> for KeelConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        crate::load::from_table(&table).map_err(serde::de::Error::custom)
    }
}
