//! `KeelConfig::to_client_options` sets every driver option Keel manages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use keel_config::{KeelConfig, LoadOptions, Profile};
use mongodb::options::{Acknowledgment, Compressor, ReadConcernLevel, Tls};

#[tokio::test]
async fn every_driver_option_is_mapped() {
    let ca = common::existing_file();
    let config = KeelConfig::load(
        LoadOptions::new()
            .profile(Profile::Development)
            .set("uri", "mongodb://db1:27017,db2:27017/app?replicaSet=rs0")
            .set("app_name", "orders")
            .set("username", "svc")
            .set("password", "Pw-mapped-1")
            .set("pool.max_size", "40")
            .set("pool.min_size", "4")
            .set("pool.max_connecting", "3")
            .set("pool.max_idle", "2m")
            .set("timeouts.connect", "4s")
            .set("timeouts.server_selection", "6s")
            .set("heartbeat", "3s")
            .set("compressors", "snappy,zlib")
            .set("tls.mode", "on")
            .set("tls.ca_file", ca.as_str())
            .set("tls.cert_key_file", ca.as_str())
            .set("tls.allow_invalid_certificates", "true")
            .set("read_concern", "majority")
            .set("write_concern.w", "majority")
            .set("write_concern.journal", "true"),
    )
    .unwrap();
    let options = config.to_client_options().await.unwrap();
    assert_eq!(options.hosts.len(), 2);
    assert_eq!(options.repl_set_name.as_deref(), Some("rs0"));
    assert_eq!(options.app_name.as_deref(), Some("orders"));
    assert_eq!(options.max_pool_size, Some(40));
    assert_eq!(options.min_pool_size, Some(4));
    assert_eq!(options.max_connecting, Some(3));
    assert_eq!(options.max_idle_time, Some(Duration::from_secs(120)));
    assert_eq!(options.connect_timeout, Some(Duration::from_secs(4)));
    assert_eq!(
        options.server_selection_timeout,
        Some(Duration::from_secs(6))
    );
    assert_eq!(options.heartbeat_freq, Some(Duration::from_secs(3)));
    assert!(matches!(
        options.compressors.as_deref(),
        Some([Compressor::Snappy, Compressor::Zlib { level: None }])
    ));
    let credential = options.credential.as_ref().unwrap();
    assert_eq!(credential.username.as_deref(), Some("svc"));
    assert_eq!(credential.password.as_deref(), Some("Pw-mapped-1"));
    let Some(Tls::Enabled(tls)) = &options.tls else {
        panic!("TLS should be on")
    };
    assert_eq!(tls.ca_file_path.as_deref(), Some(std::path::Path::new(&ca)));
    assert_eq!(
        tls.cert_key_file_path.as_deref(),
        Some(std::path::Path::new(&ca))
    );
    assert_eq!(tls.allow_invalid_certificates, Some(true));
    assert_eq!(
        options.read_concern.as_ref().unwrap().level,
        ReadConcernLevel::Majority
    );
    let write_concern = options.write_concern.as_ref().unwrap();
    assert_eq!(write_concern.w, Some(Acknowledgment::Majority));
    assert_eq!(write_concern.journal, Some(true));
}

#[tokio::test]
async fn defaults_leave_the_connection_string_in_charge_of_what_keel_does_not_set() {
    let config =
        KeelConfig::for_uri("mongodb://u:Pw-2@h/?tls=true&authSource=admin&readConcernLevel=local")
            .unwrap();
    let options = config.to_client_options().await.unwrap();
    assert!(
        matches!(options.tls, Some(Tls::Enabled(_))),
        "tls.mode from-uri keeps tls=true"
    );
    assert_eq!(
        options.credential.as_ref().unwrap().source.as_deref(),
        Some("admin")
    );
    assert_eq!(
        options.read_concern.as_ref().unwrap().level,
        ReadConcernLevel::Local
    );
    assert_eq!(options.compressors, None);
    assert_eq!(
        options.write_concern.as_ref().unwrap().w,
        Some(Acknowledgment::Majority)
    );
}

#[tokio::test]
async fn tls_off_disables_tls() {
    let config = KeelConfig::load(
        LoadOptions::new()
            .set("uri", "mongodb://h/?tls=true")
            .set("tls.mode", "off"),
    )
    .unwrap();
    let options = config.to_client_options().await.unwrap();
    assert!(matches!(options.tls, Some(Tls::Disabled)));
}

#[tokio::test]
async fn changes_made_in_code_are_validated_before_mapping() {
    let mut config = KeelConfig::development("mongodb://h/").unwrap();
    config.pool.max_size = 0;
    let errors = config.to_client_options().await.unwrap_err();
    assert!(errors.mentions("pool.max_size"));
}
