//! How each setting type is read from text (files, env, overrides) and shown by `explain`.

use std::path::PathBuf;
use std::time::Duration;

use keel_core::Secret;
use keel_core::redact::REDACTED;

use crate::duration::{format_duration, parse_duration};
use crate::settings::{Compression, ReadConcernSetting, TlsMode, WriteAck};
use crate::{ConnectionUri, Preset, Profile};

/// Shown for an optional setting that is unset.
pub(crate) const NOT_SET: &str = "(not set)";

/// Why a text could not become a value, and how to write it.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) problem: String,
    pub(crate) fix: String,
}

impl Problem {
    pub(crate) fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// A setting type: parsed from text and rendered back in the same syntax.
pub(crate) trait FieldValue: Sized {
    fn parse(text: &str) -> Result<Self, Problem>;
    fn render(&self) -> String;
}

impl FieldValue for u32 {
    fn parse(text: &str) -> Result<Self, Problem> {
        text.trim().parse().map_err(|_| {
            Problem::new(
                "not a whole number",
                format!(
                    "write a whole number between 0 and {}, such as 10",
                    u32::MAX
                ),
            )
        })
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for f64 {
    fn parse(text: &str) -> Result<Self, Problem> {
        match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(Problem::new(
                "not a number",
                "write a decimal number such as 0.5",
            )),
        }
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for bool {
    fn parse(text: &str) -> Result<Self, Problem> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Problem::new("not a boolean", "write true or false")),
        }
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for Option<bool> {
    fn parse(text: &str) -> Result<Self, Problem> {
        if text.trim() == "server-default" {
            return Ok(None);
        }
        bool::parse(text)
            .map(Some)
            .map_err(|_| Problem::new("not a boolean", "write true, false or server-default"))
    }

    fn render(&self) -> String {
        self.map_or_else(|| "server-default".to_owned(), |value| value.to_string())
    }
}

impl FieldValue for Duration {
    fn parse(text: &str) -> Result<Self, Problem> {
        parse_duration(text).map_err(|error| {
            let message = error.to_string();
            // The duration errors are written as "<problem>; <fix>".
            match message.split_once("; ") {
                Some((problem, fix)) => Problem::new(problem, fix),
                None => Problem::new(message, "write a duration such as \"500ms\" or \"5s\""),
            }
        })
    }

    fn render(&self) -> String {
        format_duration(*self).to_string()
    }
}

impl FieldValue for Option<String> {
    fn parse(text: &str) -> Result<Self, Problem> {
        let text = text.trim();
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }

    fn render(&self) -> String {
        self.clone().unwrap_or_else(|| NOT_SET.to_owned())
    }
}

impl FieldValue for Option<PathBuf> {
    fn parse(text: &str) -> Result<Self, Problem> {
        let text = text.trim();
        Ok((!text.is_empty()).then(|| PathBuf::from(text)))
    }

    fn render(&self) -> String {
        self.as_ref()
            .map_or_else(|| NOT_SET.to_owned(), |path| path.display().to_string())
    }
}

impl FieldValue for Option<Secret<String>> {
    fn parse(text: &str) -> Result<Self, Problem> {
        // Not trimmed: spaces may be part of a password.
        Ok((!text.is_empty()).then(|| Secret::new(text.to_owned())))
    }

    fn render(&self) -> String {
        match self {
            Some(_) => REDACTED.to_owned(),
            None => NOT_SET.to_owned(),
        }
    }
}

impl FieldValue for ConnectionUri {
    fn parse(text: &str) -> Result<Self, Problem> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Problem::new(
                "the connection string is empty",
                "set it to mongodb://host:27017/ or mongodb+srv://cluster.example.net/",
            ));
        }
        Ok(ConnectionUri::new(text))
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for Profile {
    fn parse(text: &str) -> Result<Self, Problem> {
        text.parse().map_err(|error: crate::profile::UnknownName| {
            Problem::new(
                "unknown profile",
                format!("use one of: {}", error.choices()),
            )
        })
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for Preset {
    fn parse(text: &str) -> Result<Self, Problem> {
        text.parse().map_err(|error: crate::profile::UnknownName| {
            Problem::new("unknown preset", format!("use one of: {}", error.choices()))
        })
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for TlsMode {
    fn parse(text: &str) -> Result<Self, Problem> {
        let wanted = text.trim().to_ascii_lowercase();
        TlsMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == wanted)
            .ok_or_else(|| Problem::new("unknown TLS mode", "use one of: from-uri, on, off"))
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for ReadConcernSetting {
    fn parse(text: &str) -> Result<Self, Problem> {
        ReadConcernSetting::parse(text).ok_or_else(|| {
            Problem::new(
                "unknown read concern level",
                format!("use one of: {}", ReadConcernSetting::NAMES),
            )
        })
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for WriteAck {
    fn parse(text: &str) -> Result<Self, Problem> {
        if text.trim().is_empty() {
            return Err(Problem::new(
                "the write acknowledgement is empty",
                "use majority, a number of members, a tag set name or server-default",
            ));
        }
        Ok(WriteAck::parse(text))
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for Vec<Compression> {
    fn parse(text: &str) -> Result<Self, Problem> {
        let mut compressors = Vec::new();
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let compressor = match name.to_ascii_lowercase().as_str() {
                "none" => continue,
                "zlib" => Compression::Zlib,
                "snappy" => Compression::Snappy,
                "zstd" => {
                    return Err(Problem::new(
                        "zstd is not available: Keel builds the MongoDB driver with zlib and snappy only (pure Rust, no C toolchain)",
                        "use zlib or snappy",
                    ));
                }
                _ => {
                    return Err(Problem::new(
                        format!("unknown compressor \"{name}\""),
                        "use a comma-separated list of zlib and snappy, or none",
                    ));
                }
            };
            if !compressors.contains(&compressor) {
                compressors.push(compressor);
            }
        }
        Ok(compressors)
    }

    fn render(&self) -> String {
        if self.is_empty() {
            return "none".to_owned();
        }
        self.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}
