//! A known password, put everywhere a user could put it, never appears in anything the crate
//! formats: `Debug`, `Display`, explanations, and every error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use keel_config::{ConnectionUri, KeelConfig, LoadOptions, Profile};

const SECRET: &str = "S3cretPw-q7";
/// Percent-encoded form a connection string may carry.
const SECRET_ENCODED: &str = "S3cretPw%2Dq7";

fn uri_with_secret() -> String {
    format!("mongodb://app:{SECRET}@db.internal:27017/shop")
}

/// Loads, and formats whatever comes out (config or errors) every way it can be formatted.
fn everything_about(options: LoadOptions, out: &mut String) {
    out.push_str(&format!("{options:?}\n"));
    match KeelConfig::load(options) {
        Ok(config) => {
            out.push_str(&format!("{config:?}\n{config:#?}\n{}\n", config.explain()));
            out.push_str(&format!("{:?}\n{}\n", config.explain(), config.uri));
            for row in config.explain().rows() {
                out.push_str(&format!("{row:?}\n"));
            }
            if let Err(errors) = config.validate() {
                out.push_str(&format!("{errors}\n{errors:?}\n"));
            }
        }
        Err(errors) => {
            out.push_str(&format!("{errors}\n{errors:?}\n"));
            for error in errors.iter() {
                out.push_str(&format!("{error}\n{error:?}\n{:?}\n", error.value()));
            }
            let core: keel_core::Error = errors.into();
            out.push_str(&format!("{core}\n{core:?}\n{}\n", core.detail()));
        }
    }
}

#[test]
fn the_secret_never_appears_in_any_output() {
    let mut out = String::new();
    let scenarios: Vec<LoadOptions> = vec![
        // Valid configurations holding the secret.
        LoadOptions::new().env([("KEEL_URI", uri_with_secret())]),
        LoadOptions::new().set("uri", format!("mongodb://app:{SECRET_ENCODED}@h/")),
        LoadOptions::new().env([("KEEL_USERNAME", "app"), ("KEEL_PASSWORD", SECRET)]),
        LoadOptions::new().file(common::toml_file(&format!(
            "username = \"app\"\npassword = \"{SECRET}\"\n"
        ))),
        LoadOptions::new().set(
            "uri",
            format!("mongodb://h/?authMechanismProperties=AWS_SESSION_TOKEN:{SECRET}"),
        ),
        // Invalid ones: every error path that could echo the value.
        LoadOptions::new().set("uri", format!("mongodb//app:{SECRET}@h/")),
        LoadOptions::new().set("uri", format!("mongodb://app:{SECRET}@h/?maxPoolSise=3")),
        LoadOptions::new().set("uri", format!("mongodb://app:{SECRET}/@h/")),
        LoadOptions::new().set("uri", format!("mongodb+srv://app:{SECRET}@localhost/")),
        LoadOptions::new().set("uri", format!("mongodb://app:{SECRET}@h/?maxIdleTimeMS=x")),
        LoadOptions::new()
            .set("uri", uri_with_secret())
            .env([("KEEL_PASSWORD", SECRET)]),
        LoadOptions::new().env([("KEEL_PASSWORD", SECRET)]),
        LoadOptions::new().env([("KEEL_PASWORD", SECRET)]),
        LoadOptions::new().set("pasword", SECRET),
        LoadOptions::new().file(common::toml_file(&format!("pasword = \"{SECRET}\"\n"))),
        LoadOptions::new().file(common::toml_file(&format!("password = \"{SECRET}\n"))),
        LoadOptions::new().file(common::toml_file(&format!("password = {SECRET}\n"))),
        LoadOptions::new().file(common::toml_file(&format!(
            "[password]\nx = \"{SECRET}\"\n"
        ))),
        LoadOptions::new()
            .set("uri", uri_with_secret())
            .set("pool.min_size", "900")
            .set("tls.allow_invalid_certificates", "true"),
    ];
    for options in scenarios {
        everything_about(options, &mut out);
    }
    let uri = ConnectionUri::new(uri_with_secret());
    out.push_str(&format!("{uri}\n{uri:?}\n"));

    let mut config = KeelConfig::load(LoadOptions::new().profile(Profile::Development)).unwrap();
    config.uri = ConnectionUri::new(uri_with_secret());
    config.password = Some(keel_core::Secret::new(SECRET.to_owned()));
    out.push_str(&format!(
        "{config:?}\n{}\n{}\n",
        config.explain(),
        config.validate().unwrap_err()
    ));

    assert!(
        out.len() > 20_000,
        "the test must actually format things ({} bytes)",
        out.len()
    );
    for needle in [SECRET, SECRET_ENCODED, "S3cretPw"] {
        assert!(
            !out.contains(needle),
            "{needle} leaked:\n{}",
            leak_context(&out, needle)
        );
    }
    assert!(out.contains("db.internal"), "hosts stay visible");
}

fn leak_context(out: &str, needle: &str) -> String {
    out.lines()
        .filter(|line| line.contains(needle))
        .collect::<Vec<_>>()
        .join("\n")
}
