//! Each loading layer on its own, and the precedence order between them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::toml_file;
use keel_config::{KeelConfig, LoadOptions, Preset, Profile, Source};

fn value_and_source(config: &KeelConfig, field: &str) -> (String, Source) {
    let row = config.explain().row(field).cloned().unwrap();
    (row.value().to_owned(), row.source())
}

/// `pool.max_size` is set by every layer with a different value; removing the top layer one
/// at a time must reveal the next one down.
#[test]
fn precedence_is_default_profile_preset_uri_file_env_override() {
    let file = toml_file("[pool]\nmax_size = 7\n");
    let uri = "mongodb://localhost/?maxPoolSize=6";
    let layers = |depth: usize| {
        let mut options = LoadOptions::new();
        if depth >= 1 {
            options = options.profile(Profile::Development);
        }
        if depth >= 2 {
            options = options.preset(Preset::Serverless);
        }
        if depth >= 3 {
            options = options.env([("KEEL_URI", uri)]);
        }
        if depth >= 4 {
            options = options.file(&file);
        }
        if depth >= 5 {
            options = options.env([("KEEL_URI", uri), ("KEEL_POOL_MAX_SIZE", "8")]);
        }
        if depth >= 6 {
            options = options.set("pool.max_size", "9");
        }
        KeelConfig::load(options).unwrap()
    };
    let expected = [
        ("100", Source::Default),
        ("10", Source::Profile),
        ("5", Source::Preset),
        ("6", Source::Uri),
        ("7", Source::File),
        ("8", Source::Env),
        ("9", Source::Override),
    ];
    for (depth, (value, source)) in expected.into_iter().enumerate() {
        let config = layers(depth);
        assert_eq!(
            value_and_source(&config, "pool.max_size"),
            (value.to_owned(), source),
            "depth {depth}"
        );
        assert_eq!(config.pool.max_size.to_string(), value);
    }
}

#[test]
fn no_input_gives_production_server_defaults() {
    let config = KeelConfig::load(LoadOptions::new()).unwrap();
    assert_eq!(
        (config.profile, config.preset),
        (Profile::Production, Preset::Server)
    );
    assert_eq!(
        config,
        KeelConfig::defaults(Profile::Production, Preset::Server)
    );
    assert_eq!(config.uri.expose(), "mongodb://localhost:27017");
    assert_eq!(config.timeouts.server_selection, Duration::from_secs(15));
    assert!(!config.lazy_connect);
    let explanation = config.explain();
    assert!(
        explanation
            .rows()
            .iter()
            .all(|row| matches!(row.source(), Source::Default | Source::Preset))
    );
    assert!(
        explanation.rows().iter().all(|row| row.reason().is_some()),
        "every default has a reason"
    );
}

#[test]
fn every_profile_and_preset_combination_is_valid() {
    for profile in Profile::ALL {
        for preset in Preset::ALL {
            let config = KeelConfig::defaults(profile, preset);
            config
                .validate()
                .unwrap_or_else(|e| panic!("{profile}/{preset}: {e}"));
        }
    }
}

#[test]
fn serverless_preset_is_small_lazy_and_short_idle() {
    let config = KeelConfig::defaults(Profile::Production, Preset::Serverless);
    assert!(config.lazy_connect);
    assert_eq!(config.pool.max_size, 5);
    assert_eq!(config.pool.min_size, 0);
    assert_eq!(config.pool.max_idle, Duration::from_secs(30));
    let server = KeelConfig::defaults(Profile::Production, Preset::Server);
    assert!(!server.lazy_connect);
    assert_eq!(server.pool.min_size, 2);
}

#[test]
fn testing_profile_has_fast_timeouts() {
    let config = KeelConfig::defaults(Profile::Testing, Preset::Server);
    assert_eq!(config.timeouts.server_selection, Duration::from_secs(2));
    assert_eq!(config.retry.initial_backoff, Duration::from_millis(10));
    assert_eq!(
        value_and_source(&config, "heartbeat"),
        ("500ms".to_owned(), Source::Profile)
    );
}

#[test]
fn file_sets_every_kind_of_value() {
    let ca = common::existing_file();
    let file = toml_file(&format!(
        r#"
profile = "testing"
preset = "serverless"
uri = "mongodb://db.internal:27017/app"
app_name = "shop"
username = "svc"
lazy_connect = false
heartbeat = "2s"
compressors = ["snappy", "zlib"]
read_concern = "majority"

[pool]
max_size = 20
max_idle = "90s"

[timeouts]
connect = "3s"

[tls]
mode = "on"
ca_file = "{ca}"

[write_concern]
w = 2
journal = true

[retry]
jitter = "decorrelated"
budget_ratio = 0.1

[breaker]
window_size = 50
"#
    ));
    let config = KeelConfig::load(LoadOptions::new().file(&file)).unwrap();
    assert_eq!(
        (config.profile, config.preset),
        (Profile::Testing, Preset::Serverless)
    );
    assert_eq!(config.app_name.as_deref(), Some("shop"));
    assert_eq!(config.username.as_deref(), Some("svc"));
    assert!(!config.lazy_connect, "the file beats the preset");
    assert_eq!(config.heartbeat, Duration::from_secs(2));
    assert_eq!(
        config.compressors,
        [
            keel_config::Compression::Snappy,
            keel_config::Compression::Zlib
        ]
    );
    assert_eq!(
        config.read_concern,
        keel_config::ReadConcernSetting::Majority
    );
    assert_eq!(config.pool.max_size, 20);
    assert_eq!(config.pool.max_idle, Duration::from_secs(90));
    assert_eq!(config.timeouts.connect, Duration::from_secs(3));
    assert_eq!(
        config.timeouts.server_selection,
        Duration::from_secs(2),
        "testing profile"
    );
    assert_eq!(config.tls.mode, keel_config::TlsMode::On);
    assert_eq!(config.write_concern.w, keel_config::WriteAck::Nodes(2));
    assert_eq!(config.write_concern.journal, Some(true));
    assert_eq!(config.retry.jitter, keel_config::Jitter::Decorrelated);
    assert_eq!(config.retry.budget_ratio, 0.1);
    assert_eq!(config.breaker.window_size, 50);
    assert_eq!(
        value_and_source(&config, "profile"),
        ("testing".to_owned(), Source::File)
    );
}

#[test]
fn env_reads_only_keel_variables_and_picks_the_profile() {
    let config = KeelConfig::load(LoadOptions::new().env([
        ("KEEL_PROFILE", "development"),
        ("KEEL_TIMEOUT_CHECKOUT_WAIT", "750ms"),
        ("KEEL_RETRY_MAX_ATTEMPTS", "5"),
        ("PATH", "/usr/bin"),
        ("MY_KEEL_THING", "x"),
    ]))
    .unwrap();
    assert_eq!(config.profile, Profile::Development);
    assert_eq!(
        config.pool.max_size, 10,
        "the env's profile picks the defaults"
    );
    assert_eq!(config.timeouts.checkout_wait, Duration::from_millis(750));
    assert_eq!(config.retry.max_attempts, 5);
    assert_eq!(
        value_and_source(&config, "retry.max_attempts"),
        ("5".to_owned(), Source::Env)
    );
}

#[test]
fn explicit_profile_beats_env_and_file() {
    let file = toml_file("profile = \"testing\"\n");
    let config = KeelConfig::load(
        LoadOptions::new()
            .file(&file)
            .env([("KEEL_PROFILE", "development")])
            .profile(Profile::Production),
    )
    .unwrap();
    assert_eq!(config.profile, Profile::Production);
    assert_eq!(config.pool.max_size, 100);
    assert_eq!(
        value_and_source(&config, "profile"),
        ("production".to_owned(), Source::Override)
    );
}

#[test]
fn env_profile_beats_file_profile() {
    let file = toml_file("profile = \"testing\"\n");
    let config = KeelConfig::load(
        LoadOptions::new()
            .file(&file)
            .env([("KEEL_PROFILE", "development")]),
    )
    .unwrap();
    assert_eq!(config.profile, Profile::Development);
    assert_eq!(config.timeouts.server_selection, Duration::from_secs(5));
}

#[test]
fn connection_string_options_are_a_layer_below_the_file() {
    let file = toml_file("app_name = \"from-file\"\n");
    let uri = "mongodb://h/?appName=from-uri&w=1&connectTimeoutMS=1500";
    let config = KeelConfig::load(LoadOptions::new().file(&file).set("uri", uri)).unwrap();
    assert_eq!(config.app_name.as_deref(), Some("from-file"));
    assert_eq!(config.write_concern.w, keel_config::WriteAck::Nodes(1));
    assert_eq!(
        value_and_source(&config, "timeouts.connect"),
        ("1500ms".to_owned(), Source::Uri)
    );
}

#[test]
fn set_and_code_changes_show_their_source() {
    let mut config = KeelConfig::development("mongodb://localhost").unwrap();
    config.set("breaker.open_wait", "7s").unwrap();
    config.retry.max_attempts = 4;
    assert_eq!(
        value_and_source(&config, "breaker.open_wait"),
        ("7s".to_owned(), Source::Override)
    );
    assert_eq!(
        value_and_source(&config, "retry.max_attempts"),
        ("4".to_owned(), Source::Code)
    );
    let err = config.set("breaker.open_wait", "soon").unwrap_err();
    assert_eq!(err.field(), "breaker.open_wait");
    assert_eq!(
        config.breaker.open_wait,
        Duration::from_secs(7),
        "a failed set changes nothing"
    );
}

#[test]
fn explanation_prints_an_aligned_table_with_sources_and_notes() {
    let config = KeelConfig::load(LoadOptions::new().env([("KEEL_POOL_MAX_SIZE", "12")])).unwrap();
    let text = config.explain().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("SETTING") && lines[0].contains("SOURCE"));
    let source_column = lines[0].find("SOURCE").unwrap();
    let pool = lines
        .iter()
        .find(|l| l.starts_with("pool.max_size "))
        .unwrap();
    assert_eq!(&pool[source_column..source_column + 3], "env");
    assert!(text.contains("note: TCP keepalive is not configurable"));
    assert_eq!(config.explain().rows().len(), keel_config::fields().len());
}

#[cfg(feature = "health")]
/// Health is a section like the others: file, `KEEL_*` and overrides, each shown by explain
/// with its source, and the pool size comes from `pool.max_size`.
#[test]
fn health_settings_load_from_every_layer_with_provenance() {
    let file = toml_file(
        "[health]\ninterval = \"2s\"\n[health.latency]\nraise_at = \"1s\"\nclear_at = \"400ms\"\n[health.recovery]\nenabled = false\n",
    );
    let config = KeelConfig::load(
        LoadOptions::new()
            .file(&file)
            .env([("KEEL_HEALTH_ERROR_RATE_RAISE_AT", "0.5")])
            .set("health.failed_checks.raise_at", "4")
            .set("pool.max_size", "40"),
    )
    .unwrap();
    let health = config.health_config();
    assert_eq!(health.interval, Duration::from_secs(2));
    assert_eq!(health.latency.raise_at, Duration::from_secs(1));
    assert_eq!(health.latency.clear_at, Duration::from_millis(400));
    assert!(!health.recovery.enabled);
    assert_eq!(health.error_rate.raise_at, 0.5);
    assert_eq!(health.failed_checks.raise_at, 4);
    assert_eq!(health.pool_max_size, 40);
    assert_eq!(
        value_and_source(&config, "health.latency.clear_at"),
        ("400ms".into(), Source::File)
    );
    assert_eq!(
        value_and_source(&config, "health.error_rate.raise_at"),
        ("0.5".into(), Source::Env)
    );
    assert_eq!(
        value_and_source(&config, "health.failed_checks.raise_at"),
        ("4".into(), Source::Override)
    );
    let default = config.explain().row("health.window").cloned().unwrap();
    assert_eq!((default.value(), default.source()), ("1m", Source::Default));
    assert!(default.reason().unwrap().contains("p99"));
}
