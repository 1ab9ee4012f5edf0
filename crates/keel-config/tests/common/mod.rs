//! Helpers shared by the integration tests: temporary TOML files and error lookups.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use keel_config::{ConfigError, ConfigErrors, KeelConfig, LoadOptions};

/// Writes `text` to a fresh file in the temp dir; unique per process and call.
pub fn toml_file(text: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("keel-config-test-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// An existing file to stand in for a PEM file (validation checks existence only).
pub fn existing_file() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").to_owned()
}

/// Loads and expects failure.
pub fn errors(options: LoadOptions) -> ConfigErrors {
    match KeelConfig::load(options) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => errors,
    }
}

/// The one error about `field`, or a panic listing what there was.
pub fn error_for(errors: &ConfigErrors, field: &str) -> ConfigError {
    errors
        .iter()
        .find(|e| e.field() == field)
        .cloned()
        .unwrap_or_else(|| panic!("no error for {field} in: {errors}"))
}
