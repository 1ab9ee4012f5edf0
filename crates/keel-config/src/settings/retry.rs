//! Settings for Keel's retry layer (mapped onto `keel-retry` by the facade).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How Keel retries an operation whose failure is retryable for its kind.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Attempts in total, the first included; 1 turns layer retries off.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each following one.
    pub initial_backoff: Duration,
    /// Ceiling of the backoff.
    pub max_backoff: Duration,
    /// How the backoff is randomised.
    pub jitter: Jitter,
    /// Retries allowed as a fraction of recent first attempts (0.2 = at most 20 % extra load).
    pub budget_ratio: f64,
    /// Retries per second always allowed, so a quiet service can still retry.
    pub min_retries_per_second: u32,
}

/// Backoff randomisation, as in AWS's "Exponential Backoff and Jitter" analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// The exact exponential backoff; clients that failed together retry together.
    None,
    /// A uniform random delay between zero and the backoff.
    Full,
    /// Half the backoff plus a random half.
    Equal,
    /// Random between the initial backoff and three times the previous delay.
    Decorrelated,
}

impl Jitter {
    /// Every strategy.
    pub const ALL: [Jitter; 4] = [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ];

    /// The name used in files and environment variables.
    pub fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Jitter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase();
        Jitter::ALL
            .into_iter()
            .find(|jitter| jitter.as_str() == wanted)
            .ok_or_else(|| "use one of: none, full, equal, decorrelated".to_owned())
    }
}
