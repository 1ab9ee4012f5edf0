//! [`Jitter`] as text (`"full"`, `"equal"`…): its name, parsing with a fix in the error, and
//! serde through that name.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Jitter;

impl Jitter {
    /// The name used in files and environment variables.
    ///
    /// ```
    /// assert_eq!(keel_retry::Jitter::Decorrelated.as_str(), "decorrelated");
    /// assert_eq!("Full".parse(), Ok(keel_retry::Jitter::Full));
    /// ```
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

/// A jitter name that is not one of Keel's strategies.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown jitter strategy; use one of: none, full, equal, decorrelated")]
pub struct UnknownJitter;

impl FromStr for Jitter {
    type Err = UnknownJitter;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase();
        Jitter::ALL
            .into_iter()
            .find(|jitter| jitter.as_str() == wanted)
            .ok_or(UnknownJitter)
    }
}

impl Serialize for Jitter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Jitter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
