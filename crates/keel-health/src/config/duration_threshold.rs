//! serde for a `Threshold<Duration>`: its levels written as text (`"500ms"`), like every
//! other duration in a settings file.

use std::time::Duration;

use humantime_serde::Serde;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Threshold;

pub(super) fn serialize<S: Serializer>(
    threshold: &Threshold<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    Threshold {
        raise_at: Serde::from(threshold.raise_at),
        clear_at: Serde::from(threshold.clear_at),
        raise_after: threshold.raise_after,
        clear_after: threshold.clear_after,
    }
    .serialize(serializer)
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Threshold<Duration>, D::Error> {
    let threshold = Threshold::<Serde<Duration>>::deserialize(deserializer)?;
    Ok(Threshold {
        raise_at: threshold.raise_at.into_inner(),
        clear_at: threshold.clear_at.into_inner(),
        raise_after: threshold.raise_after,
        clear_after: threshold.clear_after,
    })
}
