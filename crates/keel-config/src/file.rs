//! Reading a TOML file into (setting, text) pairs, rejecting unknown keys by name.

use std::path::Path;

use crate::error::ConfigError;
use crate::fields::{index_of_path, is_section};

/// One value read from a layer: the field's index, how the user named it, and its text.
#[derive(Debug)]
pub(crate) struct Assignment {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) text: String,
}

/// Reads and flattens the file; problems are pushed to `errors`.
pub(crate) fn read(path: &Path, errors: &mut Vec<ConfigError>) -> Vec<Assignment> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            errors.push(
                ConfigError::new(
                    "file",
                    format!("cannot read the configuration file ({error})"),
                    "check the path, or leave the file out to use defaults and KEEL_* variables",
                )
                .with_value(shown),
            );
            return Vec::new();
        }
    };
    parse(&text, &shown, errors)
}

/// Flattens TOML text; `origin` names the file in errors.
pub(crate) fn parse(text: &str, origin: &str, errors: &mut Vec<ConfigError>) -> Vec<Assignment> {
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(error) => {
            // Only the message and line: the full rendering quotes the source line, which may
            // hold a password.
            let line = error
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let at = line.map_or_else(String::new, |line| format!(" at line {line}"));
            errors.push(
                ConfigError::new(
                    "file",
                    format!("not valid TOML{at}: {}", error.message().trim_end()),
                    "fix the syntax, e.g. `[pool]` then `max_size = 20`, strings in quotes",
                )
                .with_value(origin),
            );
            return Vec::new();
        }
    };
    flatten_table(&table, errors)
}

/// Flattens a parsed table into assignments.
pub(crate) fn flatten_table(table: &toml::Table, errors: &mut Vec<ConfigError>) -> Vec<Assignment> {
    let mut out = Vec::new();
    flatten(table, "", &mut out, errors);
    out
}

fn flatten(
    table: &toml::Table,
    prefix: &str,
    out: &mut Vec<Assignment>,
    errors: &mut Vec<ConfigError>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (index_of_path(&path), value) {
            (None, toml::Value::Table(inner)) if is_section(&path) => {
                flatten(inner, &path, out, errors)
            }
            (None, _) => errors.push(crate::suggest::unknown_path(&path)),
            (Some(_), toml::Value::Table(_)) => errors.push(ConfigError::new(
                path.as_str(),
                "expected a value, found a table",
                format!("write `{path} = <value>`"),
            )),
            (Some(index), value) => match scalar_text(value) {
                Some(text) => out.push(Assignment {
                    index,
                    name: path,
                    text,
                }),
                None => errors.push(ConfigError::new(
                    path.as_str(),
                    "nested arrays and tables are not valid values",
                    "write a string, number, boolean, or an array of strings",
                )),
            },
        }
    }
}

/// The text a value would have in an environment variable.
fn scalar_text(value: &toml::Value) -> Option<String> {
    Some(match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Integer(number) => number.to_string(),
        toml::Value::Float(number) => number.to_string(),
        toml::Value::Boolean(flag) => flag.to_string(),
        toml::Value::Datetime(datetime) => datetime.to_string(),
        toml::Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    toml::Value::Array(_) | toml::Value::Table(_) => None,
                    scalar => scalar_text(scalar),
                })
                .collect();
            parts?.join(",")
        }
        toml::Value::Table(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(text: &str) -> (Vec<(String, String)>, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let out = parse(text, "test.toml", &mut errors);
        (out.into_iter().map(|a| (a.name, a.text)).collect(), errors)
    }

    #[test]
    fn sections_and_scalars_flatten_to_paths() {
        let (out, errors) = flat(
            "app_name = \"a\"\ncompressors = [\"zlib\", \"snappy\"]\n[pool]\nmax_size = 7\n[retry]\nbudget_ratio = 0.5\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(out.contains(&("pool.max_size".into(), "7".into())));
        assert!(out.contains(&("compressors".into(), "zlib,snappy".into())));
        assert!(out.contains(&("retry.budget_ratio".into(), "0.5".into())));
    }

    #[test]
    fn unknown_keys_are_named_with_a_suggestion_and_without_their_value() {
        let (_, errors) = flat("pasword = \"Zq9-secret\"\n[pool]\nmax_sise = 3\n[nope]\nx = 1\n");
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("pasword") && t.contains("did you mean password"))
        );
        assert!(
            text.iter()
                .any(|t| t.contains("did you mean pool.max_size"))
        );
        assert!(text.iter().any(|t| t.starts_with("nope: unknown setting")));
        assert!(!text.concat().contains("Zq9-secret"));
    }

    #[test]
    fn syntax_errors_give_the_line_but_not_the_source_text() {
        let (_, errors) = flat("app_name = \"x\"\npassword = \"Zq9-secret\n");
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(!text.contains("Zq9-secret"), "{text}");
    }

    #[test]
    fn a_value_where_a_section_belongs_is_rejected() {
        let (_, errors) = flat("pool = 3\n");
        assert_eq!(errors[0].field(), "pool");
    }
}
