//! Keel's defaults as data: the base values, then what each profile and preset changes, each
//! with the reason it was chosen. `explain` shows the reason next to every default in effect.

use crate::{Preset, Profile};

/// One default value and why it was chosen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Default {
    pub(crate) path: &'static str,
    pub(crate) value: &'static str,
    pub(crate) reason: &'static str,
}

const fn d(path: &'static str, value: &'static str, reason: &'static str) -> Default {
    Default {
        path,
        value,
        reason,
    }
}

/// The base of this crate's own fields, tuned for a production service riding out a replica-set
/// failover. The layer sections' base defaults are their crates' `Default`s, with the reasons
/// their crates give.
pub(crate) static BASE: &[Default] = &[
    d(
        "profile",
        "production",
        "a deployment that forgot to choose must not get relaxed checks",
    ),
    d(
        "preset",
        "server",
        "a long-running service is the common case; serverless is opt-in",
    ),
    d(
        "uri",
        "mongodb://localhost:27017",
        "the driver's default and where a local mongod listens; set KEEL_URI elsewhere",
    ),
    d(
        "app_name",
        "keel",
        "names the client in server logs and currentOp; set it to your service name",
    ),
    d(
        "username",
        "",
        "credentials come only from the connection string or explicit settings",
    ),
    d(
        "password",
        "",
        "credentials come only from the connection string or explicit settings",
    ),
    d(
        "lazy_connect",
        "false",
        "connect at startup so a bad address fails the deploy, not the first request",
    ),
    d(
        "heartbeat",
        "10s",
        "the driver's default: notices a failover within seconds at negligible load",
    ),
    d(
        "compressors",
        "none",
        "compression costs CPU on both ends and pays off only on slow links; opt in",
    ),
    d(
        "timeouts.connect",
        "10s",
        "the driver's default; fits a TLS handshake across regions",
    ),
    d(
        "timeouts.server_selection",
        "15s",
        "covers a typical election (about 12s) so one attempt rides out a failover, half the driver's 30s",
    ),
    d(
        "timeouts.attempt",
        "20s",
        "longer than server selection so an attempt does not cut a failover short; stops hung sockets",
    ),
    d(
        "timeouts.checkout_wait",
        "5s",
        "the driver waits for a connection forever; a request stuck 5s is better failed as overloaded",
    ),
    d(
        "timeouts.deadline",
        "60s",
        "room for a failover plus retries; callers set tighter deadlines per operation",
    ),
    d(
        "timeouts.outage_grace",
        "1s",
        "counts from the first failed check, so a server back within a second (a quick restart, a brief partition) is still waited for, while callers of a dead deployment hear it within about a second instead of holding a worker for the whole deadline",
    ),
    d(
        "timeouts.election_wait",
        "12s",
        "mongod's 10s election timeout plus margin: calls made during a failover wait for the new primary and succeed",
    ),
    d(
        "tls.mode",
        "from-uri",
        "the connection string already says it (mongodb+srv turns TLS on); one place to look",
    ),
    d(
        "tls.ca_file",
        "",
        "the bundled Mozilla roots verify public CAs such as Atlas's",
    ),
    d(
        "tls.cert_key_file",
        "",
        "X.509 client authentication is opt-in",
    ),
    d(
        "tls.allow_invalid_certificates",
        "false",
        "certificate checks are what make TLS secure",
    ),
    d(
        "tls.allow_invalid_hostnames",
        "false",
        "host name checks are what make TLS secure",
    ),
    d(
        "read_concern",
        "server-default",
        "the server's local level is what most applications expect; majority costs latency, opt in",
    ),
    d(
        "write_concern.w",
        "majority",
        "acknowledged writes survive a failover; stated so an old or reconfigured server cannot weaken it",
    ),
    d(
        "write_concern.journal",
        "server-default",
        "majority already implies journaling on default servers",
    ),
];

static DEVELOPMENT: &[Default] = &[
    d(
        "timeouts.server_selection",
        "5s",
        "fails fast when the local mongod is not running",
    ),
    d(
        "timeouts.attempt",
        "10s",
        "stays above server selection while keeping a hung call short",
    ),
    d(
        "timeouts.deadline",
        "30s",
        "a developer waits seconds, not a minute",
    ),
    d(
        "pool.max_size",
        "10",
        "a laptop needs few connections; a small pool shows connection leaks early",
    ),
];

static TESTING: &[Default] = &[
    d(
        "timeouts.connect",
        "2s",
        "a local test server accepts in milliseconds; a missing one fails the test quickly",
    ),
    d(
        "timeouts.server_selection",
        "2s",
        "a missing test server fails the test instead of hanging CI",
    ),
    d(
        "timeouts.attempt",
        "5s",
        "stays above server selection while keeping test failures quick",
    ),
    d(
        "timeouts.checkout_wait",
        "1s",
        "pool starvation in a test shows up in a second",
    ),
    d(
        "timeouts.deadline",
        "10s",
        "no single test operation should take longer",
    ),
    d(
        "heartbeat",
        "500ms",
        "the driver's minimum: test server restarts and step-downs are noticed at once",
    ),
    d(
        "pool.max_size",
        "10",
        "tests need few connections; a small pool shows connection leaks early",
    ),
    d("retry.initial_backoff", "10ms", "keeps retry tests fast"),
    d("retry.max_backoff", "100ms", "keeps retry tests fast"),
    d("breaker.open_wait", "1s", "keeps breaker tests fast"),
    d("breaker.max_open_wait", "5s", "keeps breaker tests fast"),
];

/// Production uses the base values: they were chosen for it.
static PRODUCTION: &[Default] = &[];

static SERVER: &[Default] = &[
    d(
        "lazy_connect",
        "false",
        "connect at startup so a bad address fails the deploy, not the first request",
    ),
    d(
        "pool.min_size",
        "2",
        "two warm connections spare the first requests after a quiet spell the handshake",
    ),
];

static SERVERLESS: &[Default] = &[
    d(
        "lazy_connect",
        "true",
        "a cold start should not wait for a connection the invocation may not need",
    ),
    d(
        "pool.max_size",
        "5",
        "hundreds of instances with 100 connections each would exhaust the cluster's connection limit",
    ),
    d(
        "pool.min_size",
        "0",
        "a frozen instance should hold no connections",
    ),
    d(
        "pool.max_connecting",
        "2",
        "an instance serves few requests at once",
    ),
    d(
        "pool.max_idle",
        "30s",
        "instances freeze between invocations; close connections before the freeze makes them stale",
    ),
    d(
        "pool.max_waiting",
        "50",
        "ten waiters per connection; beyond that the instance is overloaded",
    ),
    d(
        "pool.reconnect_queue",
        "100",
        "an instance serves few requests; a long queue only delays failures",
    ),
];

pub(crate) fn for_profile(profile: Profile) -> &'static [Default] {
    match profile {
        Profile::Development => DEVELOPMENT,
        Profile::Testing => TESTING,
        Profile::Production => PRODUCTION,
    }
}

pub(crate) fn for_preset(preset: Preset) -> &'static [Default] {
    match preset {
        Preset::Server => SERVER,
        Preset::Serverless => SERVERLESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::fields;

    #[test]
    fn base_covers_every_own_field_exactly_once_in_table_order() {
        let base: Vec<_> = BASE.iter().map(|d| d.path).collect();
        let own: Vec<_> = fields()
            .iter()
            .filter(|f| f.layer_reason().is_none())
            .map(|f| f.path())
            .collect();
        assert_eq!(base, own);
    }

    #[test]
    fn every_default_names_a_field_and_has_a_reason() {
        let tables = Profile::ALL
            .into_iter()
            .map(for_profile)
            .chain(Preset::ALL.into_iter().map(for_preset))
            .chain([BASE]);
        for table in tables {
            for default in table {
                assert!(
                    crate::fields::index_of_path(default.path).is_some(),
                    "{}",
                    default.path
                );
                assert!(default.reason.len() > 20, "{} needs a reason", default.path);
            }
        }
    }
}
