//! Humane durations ("500ms", "5s", "2m", "1h") as written in TOML files and environment variables.

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected; the message always says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing was written.
    #[error(
        "the duration is empty; write a number followed by a unit, such as \"500ms\", \"5s\", \"2m\" or \"1h\""
    )]
    Empty,
    /// A bare number: "5" could be seconds or milliseconds, so Keel refuses to guess.
    #[error("the duration has no unit; write it with one, such as \"{number}s\" or \"{number}ms\"")]
    MissingUnit {
        /// The number that was written.
        number: String,
    },
    /// The unit is not one of `ms`, `s`, `m`, `h`.
    #[error("unknown duration unit \"{unit}\"; use ms, s, m or h, such as \"500ms\" or \"5s\"")]
    UnknownUnit {
        /// The unit that was written.
        unit: String,
    },
    /// The part before the unit is not a whole number.
    #[error("the duration must start with a whole number, such as \"500ms\" or \"5s\"")]
    NotANumber,
    /// The value does not fit in a `Duration`.
    #[error("the duration is too large; write a smaller value")]
    TooLarge,
}

/// Parses a humane duration: a whole number followed by `ms`, `s`, `m` or `h`.
///
/// A unit is required: a bare `5` is rejected rather than guessed.
///
/// ```
/// use std::time::Duration;
/// use keel_config::parse_duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(DurationError::NotANumber);
    }
    let unit = unit.trim();
    if unit.is_empty() {
        return Err(DurationError::MissingUnit {
            number: number.to_owned(),
        });
    }
    let value: u64 = number.parse().map_err(|_| DurationError::TooLarge)?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        // "1.5s" lands here with unit ".5s": say what is wrong with the number instead.
        other if other.starts_with('.') || other.starts_with(',') => {
            return Err(DurationError::NotANumber);
        }
        other => {
            return Err(DurationError::UnknownUnit {
                unit: other.to_owned(),
            });
        }
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or(DurationError::TooLarge)
}

/// Formats a duration the way [`parse_duration`] reads it, in the largest exact unit.
///
/// ```
/// use std::time::Duration;
/// use keel_config::format_duration;
/// assert_eq!(format_duration(Duration::from_secs(120)).to_string(), "2m");
/// assert_eq!(format_duration(Duration::from_millis(1500)).to_string(), "1500ms");
/// ```
pub fn format_duration(duration: Duration) -> impl fmt::Display {
    HumaneDuration(duration)
}

struct HumaneDuration(Duration);

impl fmt::Display for HumaneDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
            if millis.is_multiple_of(size) {
                return write!(f, "{}{unit}", millis / size);
            }
        }
        write!(f, "{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse_duration("7ms"), Ok(Duration::from_millis(7)));
        assert_eq!(parse_duration("7s"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("7m"), Ok(Duration::from_secs(420)));
        assert_eq!(parse_duration("7min"), Ok(Duration::from_secs(420)));
        assert_eq!(parse_duration("7h"), Ok(Duration::from_secs(25_200)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5 s"), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn bad_durations_are_typed() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("5"),
            Err(DurationError::MissingUnit { number: "5".into() })
        );
        assert_eq!(
            parse_duration("5d"),
            Err(DurationError::UnknownUnit { unit: "d".into() })
        );
        assert_eq!(parse_duration("s"), Err(DurationError::NotANumber));
        assert_eq!(parse_duration("-5s"), Err(DurationError::NotANumber));
        assert_eq!(parse_duration("1.5s"), Err(DurationError::NotANumber));
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err(DurationError::TooLarge)
        );
    }

    #[test]
    fn missing_unit_message_suggests_both_units() {
        let message = parse_duration("30").unwrap_err().to_string();
        assert!(
            message.contains("\"30s\"") && message.contains("\"30ms\""),
            "{message}"
        );
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "1ms", "1500ms", "5s", "90s", "2m", "1h", "25h"] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(format_duration(parsed).to_string(), text);
        }
    }
}
