//! Every kind of bad input gets a typed error naming the field, the (redacted) value and a fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{error_for, errors, existing_file, toml_file};
use std::time::Duration;

use keel_config::{KeelConfig, LoadOptions, Profile};

#[test]
fn malformed_uri_is_named_and_redacted() {
    for uri in [
        "mongodb//user:Pw4-xyz@host",
        "http://user:Pw4-xyz@host/",
        "mongodb://user:Pw4-xyz@/",
    ] {
        let errs = errors(LoadOptions::new().set("uri", uri));
        let err = error_for(&errs, "uri");
        assert!(
            err.problem()
                .contains("not a valid MongoDB connection string"),
            "{err}"
        );
        assert!(err.fix().contains("mongodb://host:27017/"), "{err}");
        assert!(!errs.to_string().contains("Pw4-xyz"), "{errs}");
        assert!(err.value().unwrap().contains("<redacted>"), "{err}");
    }
}

#[test]
fn empty_uri_is_rejected() {
    let errs = errors(LoadOptions::new().env([("KEEL_URI", "  ")]));
    assert!(error_for(&errs, "KEEL_URI").problem().contains("empty"));
}

#[test]
fn unknown_connection_string_option_is_reported_by_name() {
    let errs = errors(LoadOptions::new().set("uri", "mongodb://h/?maxPoolSise=3"));
    let err = error_for(&errs, "uri");
    assert!(
        err.problem().to_lowercase().contains("maxpoolsise"),
        "{err}"
    );
    assert!(
        err.fix().starts_with("correct or remove the option"),
        "{err}"
    );
}

#[test]
fn unknown_file_key_is_named_with_a_suggestion() {
    let file = toml_file("[pool]\nmax_sise = 3\n");
    let errs = errors(LoadOptions::new().file(&file));
    let err = error_for(&errs, "pool.max_sise");
    assert_eq!(err.problem(), "unknown setting");
    assert!(err.fix().contains("did you mean pool.max_size?"), "{err}");
}

#[test]
fn unknown_env_variable_is_named_with_a_suggestion_but_not_its_value() {
    let errs = errors(LoadOptions::new().env([("KEEL_POOL_MAXSIZE", "Val-77")]));
    let err = error_for(&errs, "KEEL_POOL_MAXSIZE");
    assert!(
        err.fix().contains("did you mean KEEL_POOL_MAX_SIZE?"),
        "{err}"
    );
    assert!(!errs.to_string().contains("Val-77"));
}

#[test]
fn keel_test_uri_belongs_to_the_test_suites_and_is_not_a_setting() {
    let config =
        KeelConfig::load(LoadOptions::new().env([("KEEL_TEST_URI", "mongodb://x/")])).unwrap();
    assert_eq!(config.uri.expose(), "mongodb://localhost:27017");
}

#[test]
fn unknown_override_path_is_rejected() {
    let errs = errors(LoadOptions::new().set("timeouts.conect", "1s"));
    assert!(
        error_for(&errs, "timeouts.conect")
            .fix()
            .contains("timeouts.connect")
    );
}

#[test]
fn password_in_uri_and_separately_is_rejected_without_showing_either() {
    let errs = errors(
        LoadOptions::new()
            .set("uri", "mongodb://app:UriPw-91@h/")
            .env([("KEEL_PASSWORD", "EnvPw-92")]),
    );
    let err = error_for(&errs, "password");
    assert!(
        err.problem()
            .contains("both in the connection string and separately")
    );
    assert!(err.fix().contains("KEEL_PASSWORD"));
    assert_eq!(err.value(), Some("<redacted>"));
    let text = errs.to_string();
    assert!(
        !text.contains("UriPw-91") && !text.contains("EnvPw-92"),
        "{text}"
    );
}

#[test]
fn password_without_any_user_name_is_rejected() {
    let errs = errors(LoadOptions::new().env([("KEEL_PASSWORD", "EnvPw-93")]));
    assert!(error_for(&errs, "password").fix().contains("KEEL_USERNAME"));
}

#[test]
fn missing_tls_files_are_named() {
    let errs = errors(
        LoadOptions::new()
            .set("tls.ca_file", "/nonexistent/ca.pem")
            .set("tls.cert_key_file", "/nonexistent/client.pem"),
    );
    for field in ["tls.ca_file", "tls.cert_key_file"] {
        let err = error_for(&errs, field);
        assert!(err.problem().contains("does not exist"), "{err}");
        assert!(err.value().unwrap().starts_with("/nonexistent/"));
    }
}

#[test]
fn tls_files_with_tls_off_are_rejected() {
    let errs = errors(
        LoadOptions::new()
            .set("tls.mode", "off")
            .set("tls.ca_file", existing_file()),
    );
    assert!(error_for(&errs, "tls.ca_file").fix().contains("tls.mode"));
}

#[test]
fn min_pool_above_max_pool_is_rejected() {
    let errs = errors(
        LoadOptions::new()
            .set("pool.max_size", "5")
            .set("pool.min_size", "6"),
    );
    let err = error_for(&errs, "pool.min_size");
    assert_eq!(err.value(), Some("6"));
    assert!(err.problem().contains("larger than pool.max_size (5)"));
    assert_eq!(err.origin(), Some("an override"));
}

#[test]
fn zero_pool_bounds_are_rejected() {
    let errs = errors(
        LoadOptions::new()
            .set("pool.max_size", "0")
            .set("pool.max_connecting", "0"),
    );
    assert!(
        error_for(&errs, "pool.max_size")
            .problem()
            .contains("unbounded")
    );
    error_for(&errs, "pool.max_connecting");
}

#[test]
fn every_zero_timeout_is_rejected() {
    for field in [
        "timeouts.connect",
        "timeouts.server_selection",
        "timeouts.attempt",
        "timeouts.checkout_wait",
        "timeouts.deadline",
        "timeouts.election_wait",
        "pool.max_idle",
        "retry.initial_backoff",
        "breaker.open_wait",
        "breaker.slow_call_threshold",
    ] {
        let errs = errors(LoadOptions::new().set(field, "0ms"));
        let err = error_for(&errs, field);
        assert_eq!(err.value(), Some("0s"), "{err}");
        assert!(err.fix().contains("positive duration"), "{err}");
    }
}

#[test]
fn durations_without_unit_or_with_unknown_unit_are_rejected() {
    let errs =
        errors(LoadOptions::new().env([("KEEL_TIMEOUT_CONNECT", "5"), ("KEEL_HEARTBEAT", "5d")]));
    let err = error_for(&errs, "KEEL_TIMEOUT_CONNECT");
    assert!(err.fix().contains("\"5s\""), "{err}");
    assert!(
        error_for(&errs, "KEEL_HEARTBEAT")
            .problem()
            .contains("unknown duration unit")
    );
}

#[test]
fn timeouts_must_nest() {
    let errs = errors(
        LoadOptions::new()
            .set("timeouts.attempt", "2m")
            .set("timeouts.deadline", "1m")
            .set("timeouts.checkout_wait", "3m"),
    );
    error_for(&errs, "timeouts.attempt");
    error_for(&errs, "timeouts.checkout_wait");
}

#[test]
fn the_outage_grace_may_be_zero_but_not_longer_than_an_election() {
    let zero = KeelConfig::load(LoadOptions::new().set("timeouts.outage_grace", "0ms"));
    assert_eq!(zero.unwrap().timeouts.outage_grace, Duration::ZERO);
    let errs = errors(
        LoadOptions::new()
            .set("timeouts.outage_grace", "20s")
            .set("timeouts.election_wait", "12s"),
    );
    let err = error_for(&errs, "timeouts.outage_grace");
    assert!(err.problem().contains("election_wait"), "{err}");
}

#[test]
fn the_outage_settings_load_from_the_environment_and_are_explained() {
    let config = KeelConfig::load(LoadOptions::new().env([
        ("KEEL_TIMEOUT_OUTAGE_GRACE", "250ms"),
        ("KEEL_TIMEOUT_ELECTION_WAIT", "20s"),
    ]))
    .unwrap();
    assert_eq!(config.timeouts.outage_grace, Duration::from_millis(250));
    assert_eq!(config.timeouts.election_wait, Duration::from_secs(20));
    let explanation = config.explain();
    let row = explanation.row("timeouts.election_wait").unwrap();
    assert_eq!((row.value(), row.source().as_str()), ("20s", "env"));
    for profile in [Profile::Development, Profile::Testing, Profile::Production] {
        let defaults = KeelConfig::load(LoadOptions::new().profile(profile)).unwrap();
        assert_eq!(
            defaults.timeouts.outage_grace,
            Duration::from_secs(1),
            "{profile:?}"
        );
        assert_eq!(
            defaults.timeouts.election_wait,
            Duration::from_secs(12),
            "{profile:?}"
        );
        let why = defaults.explain();
        let why = why.row("timeouts.outage_grace").unwrap();
        assert_eq!(why.source().as_str(), "default");
    }
}

#[test]
fn invalid_certificates_are_refused_in_production_only() {
    let errs = errors(LoadOptions::new().set("tls.allow_invalid_certificates", "true"));
    let err = error_for(&errs, "tls.allow_invalid_certificates");
    assert!(err.problem().contains("production"), "{err}");
    assert!(err.fix().contains("tls.ca_file"), "{err}");

    for profile in [Profile::Development, Profile::Testing] {
        let config = KeelConfig::load(
            LoadOptions::new()
                .profile(profile)
                .set("tls.allow_invalid_certificates", "true"),
        )
        .unwrap();
        assert!(config.tls.allow_invalid_certificates);
    }
}

#[test]
fn insecure_connection_string_is_refused_in_production() {
    let errs = errors(LoadOptions::new().set("uri", "mongodb://h/?tls=true&tlsInsecure=true"));
    let err = error_for(&errs, "tls.allow_invalid_certificates");
    assert_eq!(err.origin(), Some("the connection string"));
}

#[test]
fn invalid_hostnames_are_refused_with_a_profile_specific_fix() {
    let errs = errors(LoadOptions::new().set("tls.allow_invalid_hostnames", "true"));
    assert!(
        error_for(&errs, "tls.allow_invalid_hostnames")
            .problem()
            .contains("development profile only")
    );
    let errs = errors(
        LoadOptions::new()
            .profile(Profile::Development)
            .set("tls.allow_invalid_hostnames", "true"),
    );
    let err = error_for(&errs, "tls.allow_invalid_hostnames");
    assert!(err.problem().contains("rustls"), "{err}");
}

#[test]
fn zstd_is_rejected_with_the_available_compressors() {
    let errs = errors(LoadOptions::new().env([("KEEL_COMPRESSORS", "zstd,zlib")]));
    let err = error_for(&errs, "KEEL_COMPRESSORS");
    assert!(err.problem().contains("zstd is not available"));
    assert_eq!(err.fix(), "use zlib or snappy");
}

#[test]
fn malformed_values_of_each_type_are_rejected() {
    let errs = errors(
        LoadOptions::new()
            .set("pool.max_size", "many")
            .set("lazy_connect", "yes")
            .set("retry.jitter", "random")
            .set("retry.budget_ratio", "NaN")
            .set("read_concern", "strong")
            .set("tls.mode", "maybe")
            .set("profile", "prod"),
    );
    for field in [
        "pool.max_size",
        "lazy_connect",
        "retry.jitter",
        "retry.budget_ratio",
        "read_concern",
        "tls.mode",
        "profile",
    ] {
        let err = error_for(&errs, field);
        assert!(!err.fix().is_empty(), "{err}");
    }
}

#[test]
fn layer_settings_out_of_range_are_rejected() {
    let errs = errors(
        LoadOptions::new()
            .set("retry.max_attempts", "0")
            .set("retry.initial_backoff", "3s")
            .set("retry.budget_ratio", "1.5")
            .set("breaker.failure_rate_threshold", "0")
            .set("breaker.minimum_calls", "200")
            .set("breaker.half_open_probes", "0")
            .set("breaker.open_wait", "2m")
            .set("heartbeat", "100ms"),
    );
    for field in [
        "retry.max_attempts",
        "retry.initial_backoff",
        "retry.budget_ratio",
        "breaker.failure_rate_threshold",
        "breaker.minimum_calls",
        "breaker.half_open_probes",
        "breaker.open_wait",
        "heartbeat",
    ] {
        error_for(&errs, field);
    }
}

#[test]
fn all_problems_are_reported_at_once_in_one_readable_block() {
    let errs = errors(
        LoadOptions::new()
            .env([("KEEL_NOPE", "1")])
            .set("pool.min_size", "500")
            .set("timeouts.connect", "0s"),
    );
    assert_eq!(errs.len(), 3, "{errs}");
    let text = errs.to_string();
    assert!(
        text.starts_with("invalid configuration (3 problems):"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
}

#[test]
fn one_problem_reads_as_one_sentence() {
    let errs = errors(LoadOptions::new().set("pool.min_size", "500"));
    assert_eq!(
        errs.to_string(),
        "invalid configuration: pool.min_size = \"500\" (from an override): larger than pool.max_size (100); fix: lower pool.min_size to at most 100, or raise pool.max_size."
    );
}

#[test]
fn missing_and_malformed_files_are_reported() {
    let errs = errors(LoadOptions::new().file("/nonexistent/keel.toml"));
    assert!(error_for(&errs, "file").problem().contains("cannot read"));
    let file = toml_file("[pool\nmax_size = 3\n");
    let errs = errors(LoadOptions::new().file(&file));
    assert!(
        error_for(&errs, "file")
            .problem()
            .contains("not valid TOML at line 1")
    );
}

#[test]
fn errors_convert_to_a_keel_core_config_error() {
    let errs = errors(LoadOptions::new().set("pool.min_size", "500"));
    let core: keel_core::Error = errs.into();
    assert_eq!(core.class(), keel_core::ErrorClass::Config);
    assert!(core.detail().contains("pool.min_size"));
}

#[test]
fn validate_rechecks_changes_made_in_code() {
    let mut config = KeelConfig::development("mongodb://localhost").unwrap();
    config.timeouts.connect = std::time::Duration::ZERO;
    let errs = config.validate().unwrap_err();
    assert_eq!(error_for(&errs, "timeouts.connect").origin(), Some("code"));
}

#[test]
fn serde_deserialization_validates_and_names_unknown_keys() {
    let err = toml::from_str::<KeelConfig>("pasword = \"Pw-serde-1\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pasword: unknown setting") && err.contains("did you mean password"),
        "{err}"
    );
    assert!(!err.contains("Pw-serde-1"), "{err}");
    let err = toml::from_str::<KeelConfig>("[pool]\nmin_size = 500\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pool.min_size = \"500\" (from the TOML file)"),
        "{err}"
    );
}

#[test]
fn a_breaker_window_the_breaker_would_refuse_is_refused_at_load() {
    let errs = errors(
        LoadOptions::new()
            .set("breaker.window_size", "2000000")
            .set("breaker.minimum_calls", "20"),
    );
    let err = error_for(&errs, "breaker.window_size");
    assert_eq!(err.value(), Some("2000000"));
    assert!(err.problem().contains("at most 1000000"), "{err}");
}

#[cfg(feature = "health")]
#[test]
fn bad_health_settings_name_the_field_and_a_fix() {
    let errs = errors(
        LoadOptions::new()
            .set("health.interval", "0s")
            .set("health.latency.clear_at", "2s")
            .set("health.recovery.after_failed_checks", "0")
            .env([("KEEL_HEALTH_JITTER", "lots")]),
    );
    for field in [
        "health.interval",
        "health.latency.clear_at",
        "health.recovery.after_failed_checks",
        "KEEL_HEALTH_JITTER",
    ] {
        let err = error_for(&errs, field);
        assert!(!err.fix().is_empty(), "{err}");
    }
    let err = error_for(&errs, "health.latency.clear_at");
    assert_eq!(err.value(), Some("2s"));
    assert!(err.fix().contains("raise_at (500ms)"), "{err}");
    let unknown = errors(LoadOptions::new().set("health.latency.rise_at", "1s"));
    assert!(
        error_for(&unknown, "health.latency.rise_at")
            .to_string()
            .contains("did you mean health.latency.raise_at"),
        "{unknown}"
    );
}

#[cfg(not(feature = "health"))]
#[test]
fn health_settings_without_the_health_monitor_say_which_feature_reads_them() {
    let errs = errors(
        LoadOptions::new()
            .file(toml_file("[health]\ninterval = \"1s\"\n"))
            .env([("KEEL_HEALTH_JITTER", "0.2")]),
    );
    for field in ["health", "KEEL_HEALTH_JITTER"] {
        assert!(
            error_for(&errs, field).fix().contains("`health` feature"),
            "{errs}"
        );
    }
}
