//! Configuration lints: settings that are valid on their own but doubtful for the deployment
//! they meet (the production profile against a server on this machine, a warm pool with the
//! serverless preset, a checkout wait shorter than a few round trips…).
//!
//! Validation ([`KeelConfig::load`]) refuses what can never work; a lint warns about what works
//! but probably is not what was meant. Some lints need facts only a connection can tell (the
//! round trip, the server's free connections): they are passed in as [`Deployment`], so the
//! lints stay pure and any tool (`keel doctor`, a service's start-up check) can run them.
//!
//! ```
//! use keel_config::lints::{Deployment, lint};
//! use keel_config::{KeelConfig, LoadOptions, Profile};
//!
//! let config = KeelConfig::load(LoadOptions::new().profile(Profile::Production))?;
//! let local = Deployment { local: true, ..Deployment::default() };
//! let found = lint(&config, &local);
//! assert_eq!(found[0].field, "profile");
//! assert!(found[0].fix.contains("--profile development"));
//! # Ok::<(), keel_config::ConfigErrors>(())
//! ```

use std::time::Duration;

use crate::duration::format_duration;
use crate::{KeelConfig, Preset, Profile};

/// How many round trips the checkout wait should cover at least: below that, ordinary load
/// (a few calls queued behind each connection) already sheds calls as overloaded.
pub const CHECKOUT_WAIT_ROUND_TRIPS: u32 = 20;

/// What is known about the deployment the configuration is used against; `None` (or `false`)
/// where it is not known, and the lints that need it stay silent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deployment {
    /// Every server address is on this machine (loopback).
    pub local: bool,
    /// A typical round trip to the server (the median `ping`).
    pub round_trip: Option<Duration>,
    /// How many more connections the server accepts (`serverStatus.connections.available`).
    pub available_connections: Option<i64>,
}

/// A doubtful setting: which one, what is doubtful about it, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lint {
    /// The setting, as a file path (`pool.min_size`).
    pub field: &'static str,
    /// What is doubtful, one sentence.
    pub problem: String,
    /// What to do about it, one sentence.
    pub fix: String,
}

impl Lint {
    fn new(field: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Every lint `config` raises against `deployment`, most important first.
pub fn lint(config: &KeelConfig, deployment: &Deployment) -> Vec<Lint> {
    let mut found = Vec::new();
    if deployment.local && config.profile == Profile::Production {
        found.push(Lint::new(
            "profile",
            "the production profile is in force for a server on this machine.",
            "for local development use --profile development (or KEEL_PROFILE=development): \
             shorter timeouts and a smaller pool.",
        ));
    }
    if config.preset == Preset::Serverless && config.pool.min_size > 0 {
        found.push(Lint::new(
            "pool.min_size",
            format!(
                "pool.min_size is {} with the serverless preset: frozen instances would hold \
                 connections open.",
                config.pool.min_size
            ),
            "set pool.min_size to 0 (KEEL_POOL_MIN_SIZE=0).",
        ));
    }
    if let Some(round_trip) = deployment.round_trip
        && round_trip * CHECKOUT_WAIT_ROUND_TRIPS > config.timeouts.checkout_wait
    {
        found.push(Lint::new(
            "timeouts.checkout_wait",
            format!(
                "timeouts.checkout_wait ({}) is less than {CHECKOUT_WAIT_ROUND_TRIPS} round trips \
                 ({:.1} ms each): calls would be shed as overloaded under ordinary load.",
                format_duration(config.timeouts.checkout_wait),
                round_trip.as_secs_f64() * 1e3
            ),
            "raise timeouts.checkout_wait (KEEL_TIMEOUTS_CHECKOUT_WAIT).",
        ));
    }
    if let Some(available) = deployment.available_connections
        && i64::from(config.pool.max_size) > available
    {
        found.push(Lint::new(
            "pool.max_size",
            format!(
                "pool.max_size is {}, but the server has only {available} connections left: one \
                 instance of this application could exhaust them.",
                config.pool.max_size
            ),
            "lower pool.max_size, or raise the server's connection limit \
             (net.maxIncomingConnections).",
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadOptions;

    fn config(profile: Profile, preset: Preset, settings: &[(&str, &str)]) -> KeelConfig {
        let mut options = LoadOptions::new().profile(profile).preset(preset);
        for (path, value) in settings {
            options = options.set(*path, *value);
        }
        KeelConfig::load(options).unwrap()
    }

    fn fields(found: &[Lint]) -> Vec<&'static str> {
        found.iter().map(|lint| lint.field).collect()
    }

    #[test]
    fn production_on_this_machine_is_doubtful_elsewhere_not() {
        let production = config(Profile::Production, Preset::Server, &[]);
        let local = Deployment {
            local: true,
            ..Deployment::default()
        };
        assert_eq!(fields(&lint(&production, &local)), ["profile"]);
        assert!(lint(&production, &Deployment::default()).is_empty());
        let development = config(Profile::Development, Preset::Server, &[]);
        assert!(lint(&development, &local).is_empty());
    }

    #[test]
    fn a_warm_pool_with_the_serverless_preset_is_doubtful() {
        let warm = config(
            Profile::Production,
            Preset::Serverless,
            &[("pool.min_size", "2")],
        );
        let found = lint(&warm, &Deployment::default());
        assert_eq!(fields(&found), ["pool.min_size"]);
        assert!(
            found[0].problem.starts_with("pool.min_size is 2"),
            "{found:?}"
        );
        let cold = config(
            Profile::Production,
            Preset::Serverless,
            &[("pool.min_size", "0")],
        );
        assert!(lint(&cold, &Deployment::default()).is_empty());
    }

    #[test]
    fn a_checkout_wait_below_twenty_round_trips_is_doubtful() {
        let short = config(
            Profile::Production,
            Preset::Server,
            &[("timeouts.checkout_wait", "100ms")],
        );
        let slow = Deployment {
            round_trip: Some(Duration::from_millis(10)),
            ..Deployment::default()
        };
        let found = lint(&short, &slow);
        assert_eq!(fields(&found), ["timeouts.checkout_wait"]);
        assert!(found[0].problem.contains("(10.0 ms each)"), "{found:?}");
        let fast = Deployment {
            round_trip: Some(Duration::from_millis(5)),
            ..Deployment::default()
        };
        assert!(
            lint(&short, &fast).is_empty(),
            "exactly 20 round trips is enough"
        );
    }

    #[test]
    fn a_pool_larger_than_the_server_s_free_connections_is_doubtful() {
        let big = config(
            Profile::Production,
            Preset::Server,
            &[("pool.max_size", "50")],
        );
        let few = Deployment {
            available_connections: Some(49),
            ..Deployment::default()
        };
        assert_eq!(fields(&lint(&big, &few)), ["pool.max_size"]);
        let enough = Deployment {
            available_connections: Some(50),
            ..Deployment::default()
        };
        assert!(lint(&big, &enough).is_empty());
    }

    #[test]
    fn every_lint_is_two_sentences() {
        let everything = config(
            Profile::Production,
            Preset::Serverless,
            &[
                ("pool.min_size", "1"),
                ("pool.max_size", "10"),
                ("timeouts.checkout_wait", "100ms"),
            ],
        );
        let found = lint(
            &everything,
            &Deployment {
                local: true,
                round_trip: Some(Duration::from_millis(50)),
                available_connections: Some(1),
            },
        );
        assert_eq!(found.len(), 4, "{found:?}");
        for lint in found {
            assert!(
                lint.problem.ends_with('.') && lint.fix.ends_with('.'),
                "{lint:?}"
            );
        }
    }
}
