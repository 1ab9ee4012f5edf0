//! Step 1, `uri`: load the configuration as Keel would and parse the connection string.

use keel_config::{ConfigErrors, KeelConfig, LoadOptions, Source};
use keel_core::redact::{redact_text, redact_uri};
use mongodb::options::{ConnectionString, HostInfo};

use super::super::advice::Finding;
use super::super::{Check, DoctorArgs};
use super::Loaded;

/// Step 1: load the configuration as Keel would and parse the connection string.
pub(crate) fn uri(args: &DoctorArgs) -> (Check, Option<Loaded>) {
    let mut options = LoadOptions::new().process_env();
    options.profile = args.profile;
    options.preset = args.preset;
    options.file.clone_from(&args.file);
    if let Some(uri) = &args.uri {
        options = options.set("uri", uri.clone());
    }
    let config = match KeelConfig::load(options) {
        Ok(config) => config,
        Err(errors) => return (config_failed("uri", &errors), None),
    };
    let shown = redact_uri(config.uri.expose());
    let source = match config.explain().row("uri").map(|row| row.source()) {
        Some(Source::Override) => "--uri".to_owned(),
        Some(Source::Env) => "KEEL_URI".to_owned(),
        Some(source) => source.to_string(),
        None => "unknown".to_owned(),
    };
    let connection = match ConnectionString::parse(config.uri.expose()) {
        Ok(connection) => connection,
        Err(error) => {
            let finding = Finding {
                problem: format!(
                    "the connection string {shown} cannot be parsed: {}.",
                    redact_text(&error.kind.to_string())
                ),
                fix: "write it as mongodb://user:password@host:27017/?options or \
                      mongodb+srv://user:password@cluster.example.net/, with special characters \
                      in the password percent-encoded (@ as %40, : as %3A, / as %2F)."
                    .to_owned(),
            };
            return (Check::fail("uri", finding), None);
        }
    };
    let mut check = Check::pass("uri", describe(&connection)).note(format!("from {source}"));
    if connection.credential.is_some() {
        check = check.note("credentials: given (user name and password hidden)");
    }
    if let Some(name) = &connection.replica_set {
        check = check.note(format!("replicaSet={name}"));
    }
    let display = format!(
        "{shown} (from {source}, profile {})",
        config.profile.as_str()
    );
    (
        check,
        Some(Loaded {
            config,
            connection,
            display,
        }),
    )
}

fn describe(connection: &ConnectionString) -> String {
    match &connection.host_info {
        HostInfo::DnsRecord(host) => {
            format!("mongodb+srv:// string for {host}: hosts come from DNS, TLS is on by default")
        }
        HostInfo::HostIdentifiers(hosts) => {
            let list: Vec<String> = hosts.iter().map(ToString::to_string).collect();
            let noun = if hosts.len() == 1 { "host" } else { "hosts" };
            format!(
                "mongodb:// string with {} {noun}: {}",
                hosts.len(),
                list.join(", ")
            )
        }
        _ => "mongodb:// string".to_owned(),
    }
}

/// `step` failed on the configuration: the first problem as the finding, from its parts (field,
/// value, origin, problem, fix); the others as notes.
pub(super) fn config_failed(step: &'static str, errors: &ConfigErrors) -> Check {
    // `ConfigError`s never hold a secret: their values are redacted when they are made.
    let mut all = errors.iter();
    let Some(first) = all.next() else {
        return Check::fail(
            step,
            Finding::new(
                "the configuration is invalid.",
                "correct the settings above; `keel config explain` shows each one and where it \
                 came from.",
            ),
        );
    };
    let mut setting = first.field().to_owned();
    if let Some(value) = first.value() {
        setting.push_str(&format!(" = \"{value}\""));
    }
    if let Some(origin) = first.origin() {
        setting.push_str(&format!(" (from {origin})"));
    }
    let heading = match errors.len() {
        1 => "invalid configuration".to_owned(),
        n => format!("invalid configuration ({n} problems)"),
    };
    let mut check = Check::fail(
        step,
        Finding::new(
            format!("{heading}: {setting}: {}.", first.problem()),
            format!("{}.", first.fix()),
        ),
    );
    for more in all {
        check = check.note(format!("also: {more}"));
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::doctor::Status;

    #[test]
    fn a_bad_setting_is_reported_from_its_parts() {
        let errors = KeelConfig::load(LoadOptions::new().set("pool.min_size", "500")).unwrap_err();
        let check = config_failed("uri", &errors);
        assert_eq!(check.status, Status::Fail);
        let first = errors.iter().next().unwrap();
        assert!(
            check
                .summary
                .starts_with("invalid configuration: pool.min_size")
                && check.summary.ends_with(&format!("{}.", first.problem())),
            "{check:?}"
        );
        assert_eq!(check.notes[0], format!("fix: {}.", first.fix()));
    }
}
