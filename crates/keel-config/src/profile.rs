//! The deployment [`Profile`] and runtime [`Preset`] that pick Keel's defaults.

use std::fmt;
use std::str::FromStr;

/// Where the application runs; picks defaults and which risky settings are allowed.
///
/// When nobody chooses, Keel uses [`Profile::Production`]: a deployment that forgot to say
/// what it is must not quietly get relaxed checks. Development is opt-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// A developer's machine: fail fast when the local server is not running, small pools,
    /// and `tls.allow_invalid_certificates` is permitted.
    Development,
    /// Automated tests: second-scale timeouts and millisecond backoffs so suites stay fast and
    /// a missing server fails a test instead of hanging CI.
    Testing,
    /// Real traffic: the base defaults, tuned to ride out a replica-set failover; insecure TLS
    /// settings are rejected.
    Production,
}

impl Profile {
    /// Every profile, in the order they are documented.
    pub const ALL: [Profile; 3] = [Profile::Development, Profile::Testing, Profile::Production];

    /// The name used in files, environment variables and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Testing => "testing",
            Profile::Production => "production",
        }
    }
}

/// How the process lives; picks pool and connection defaults.
///
/// When nobody chooses, Keel uses [`Preset::Server`], the common case of a long-running service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// A long-running process: connect at startup so a bad address fails the deploy, and keep a
    /// couple of warm connections.
    Server,
    /// A function instance (AWS Lambda, Cloud Run…): small pool, lazy connect, short idle time,
    /// because instances are many, short-lived and frozen between invocations.
    Serverless,
}

impl Preset {
    /// Every preset, in the order they are documented.
    pub const ALL: [Preset; 2] = [Preset::Server, Preset::Serverless];

    /// The name used in files, environment variables and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Server => "server",
            Preset::Serverless => "serverless",
        }
    }
}

/// A profile or preset name that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} \"{value}\"; use one of: {choices}")]
pub struct UnknownName {
    what: &'static str,
    value: String,
    choices: String,
}

impl UnknownName {
    /// The accepted names, comma separated.
    pub fn choices(&self) -> &str {
        &self.choices
    }
}

fn parse_named<T: Copy>(
    text: &str,
    what: &'static str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, UnknownName> {
    let wanted = text.trim().to_ascii_lowercase();
    all.iter()
        .copied()
        .find(|candidate| name(*candidate) == wanted)
        .ok_or_else(|| UnknownName {
            what,
            value: text.to_owned(),
            choices: all.iter().map(|c| name(*c)).collect::<Vec<_>>().join(", "),
        })
}

impl FromStr for Profile {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_named(text, "profile", &Profile::ALL, Profile::as_str)
    }
}

impl FromStr for Preset {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_named(text, "preset", &Preset::ALL, Preset::as_str)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for profile in Profile::ALL {
            assert_eq!(profile.as_str().to_uppercase().parse(), Ok(profile));
        }
        for preset in Preset::ALL {
            assert_eq!(preset.to_string().parse(), Ok(preset));
        }
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let err = "prod".parse::<Profile>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile \"prod\"; use one of: development, testing, production"
        );
        assert!("lambda".parse::<Preset>().is_err());
    }
}
