//! Collection options `create` takes besides `changeStreamPreAndPostImages`: `capped` (with
//! `size` and `max`) and `validator` (with `validationLevel` and `validationAction`). They are
//! reported by `listCollections` in the order and with the number types mongod's
//! `CollectionOptions::toBSON` writes them (`appendNumber`: an int32 below 2^30, else an int64),
//! a capped collection drops its oldest documents past `max` documents or `size` bytes, and a
//! validator written as query operators is enforced with the filter matcher
//! (`DocumentValidationFailure`, 121, as a write error).

use bson::{Bson, Document, doc};

use super::Storage;
use crate::commands::{CommandError, codes};
use crate::query::filter::Filter;

/// DocumentValidationFailure (mongod's `error_codes.yml`).
pub(crate) const DOCUMENT_VALIDATION_FAILURE: i32 = 121;

/// `capped: true, size, max`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Capped {
    /// Bytes of BSON kept at most.
    pub(crate) size: i64,
    /// Documents kept at most (`None`: only `size` caps).
    pub(crate) max: Option<i64>,
}

/// `validationLevel`: which writes are checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Level {
    /// Every insert and update.
    Strict,
    /// Inserts, and updates of documents that were valid before.
    Moderate,
    /// Nothing.
    Off,
}

/// `validator` with its level and action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Validator {
    pub(crate) rule: Document,
    pub(crate) level: Level,
    /// `validationAction: "warn"`: a failing write is accepted (mongod logs it).
    pub(crate) warn: bool,
}

/// The options of one collection beyond pre-/post-images.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CollectionOptions {
    pub(crate) capped: Option<Capped>,
    pub(crate) validator: Option<Validator>,
}

/// mongod's `BSONObjBuilder::appendNumber(long long)`: small numbers as int32.
fn number(n: i64) -> Bson {
    if n.abs() < (1 << 30) {
        Bson::Int32(n as i32)
    } else {
        Bson::Int64(n)
    }
}

fn integer(cmd: &Document, field: &str) -> Result<Option<i64>, CommandError> {
    match cmd.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Int32(n)) => Ok(Some(i64::from(*n))),
        Some(Bson::Int64(n)) => Ok(Some(*n)),
        Some(Bson::Double(d)) if d.fract() == 0.0 => Ok(Some(*d as i64)),
        Some(other) => Err(CommandError::type_mismatch(
            &format!("create.{field}"),
            "number",
            other,
        )),
    }
}

impl CollectionOptions {
    /// The options of a `create` command; `Ok(default)` when it has none.
    pub(crate) fn parse(cmd: &Document) -> Result<Self, CommandError> {
        let capped = match cmd.get("capped") {
            None | Some(Bson::Boolean(false)) => None,
            Some(Bson::Boolean(true)) => {
                let size = integer(cmd, "size")?.ok_or_else(|| {
                    CommandError::new(
                        codes::INVALID_OPTIONS,
                        "the 'size' field is required when 'capped' is true",
                    )
                })?;
                if size <= 0 {
                    return Err(CommandError::bad_value(
                        "the 'size' of a capped collection must be positive",
                    ));
                }
                // mongod: `max` of 0 or less means no document limit.
                let max = integer(cmd, "max")?.filter(|m| *m > 0);
                Some(Capped { size, max })
            }
            Some(other) => {
                return Err(CommandError::type_mismatch("create.capped", "bool", other));
            }
        };
        let level = match cmd.get("validationLevel") {
            None => Level::Strict,
            Some(Bson::String(s)) if s == "strict" => Level::Strict,
            Some(Bson::String(s)) if s == "moderate" => Level::Moderate,
            Some(Bson::String(s)) if s == "off" => Level::Off,
            Some(other) => {
                return Err(CommandError::bad_value(format!(
                    "Enumeration value '{other}' for field 'create.validationLevel' is not a \
                     valid value: use \"strict\", \"moderate\" or \"off\""
                )));
            }
        };
        let warn = match cmd.get("validationAction") {
            None => false,
            Some(Bson::String(s)) if s == "error" => false,
            Some(Bson::String(s)) if s == "warn" => true,
            Some(other) => {
                return Err(CommandError::bad_value(format!(
                    "Enumeration value '{other}' for field 'create.validationAction' is not a \
                     valid value: use \"error\" or \"warn\""
                )));
            }
        };
        let validator = match cmd.get("validator") {
            None => None,
            Some(Bson::Document(rule)) if rule.is_empty() => None,
            Some(Bson::Document(rule)) => {
                check_rule(rule)?;
                Some(Validator {
                    rule: rule.clone(),
                    level,
                    warn,
                })
            }
            Some(other) => {
                return Err(CommandError::type_mismatch(
                    "create.validator",
                    "object",
                    other,
                ));
            }
        };
        Ok(Self { capped, validator })
    }

    /// As `listCollections` reports them (mongod's `CollectionOptions::toBSON` order).
    pub(crate) fn to_document(&self) -> Document {
        let mut d = Document::new();
        if let Some(c) = &self.capped {
            d.insert("capped", true);
            d.insert("size", number(c.size));
            if let Some(max) = c.max {
                d.insert("max", number(max));
            }
        }
        if let Some(v) = &self.validator {
            d.insert("validator", v.rule.clone());
            d.insert(
                "validationLevel",
                match v.level {
                    Level::Strict => "strict",
                    Level::Moderate => "moderate",
                    Level::Off => "off",
                },
            );
            d.insert("validationAction", if v.warn { "warn" } else { "error" });
        }
        d
    }
}

/// A validator the filter matcher can evaluate; `$jsonSchema` and `$expr` (anywhere) are
/// refused.
fn check_rule(rule: &Document) -> Result<(), CommandError> {
    if let Some(op) = unsupported_operator(rule) {
        return Err(CommandError::new(
            codes::COMMAND_NOT_SUPPORTED,
            format!(
                "keel-testkit cannot evaluate {op} validators: write the validator with query \
                 operators (e.g. {{qty: {{$gte: 0}}}}) or test against a real mongod"
            ),
        ));
    }
    Filter::parse(rule).map(|_| ())
}

fn unsupported_operator(d: &Document) -> Option<&'static str> {
    d.iter().find_map(|(k, v)| match k.as_str() {
        "$jsonSchema" => Some("$jsonSchema"),
        "$expr" => Some("$expr"),
        _ => match v {
            Bson::Document(d) => unsupported_operator(d),
            Bson::Array(a) => a.iter().find_map(|v| match v {
                Bson::Document(d) => unsupported_operator(d),
                _ => None,
            }),
            _ => None,
        },
    })
}

impl Storage {
    /// Sets the options of a collection just created.
    pub(crate) fn set_collection_options(
        &mut self,
        db: &str,
        coll: &str,
        options: CollectionOptions,
    ) {
        let Some(c) = self.collection_mut(db, coll) else {
            return;
        };
        c.options = options;
        let options = c.options.to_document();
        self.observe(|| super::WriteEvent::CreateOptions {
            db: db.into(),
            coll: coll.into(),
            options,
        });
    }

    /// Checks `doc` against the collection's validator before it is written; `before` is the
    /// document an update replaces. mongod's error: a `DocumentValidationFailure` write error
    /// with `errInfo.failingDocumentId` (SERVER-20547; the `details` explanation is not built).
    pub(crate) fn validate(
        &self,
        db: &str,
        coll: &str,
        before: Option<&Document>,
        doc: &Document,
    ) -> Result<(), CommandError> {
        let Some(v) = self
            .collection(db, coll)
            .and_then(|c| c.options.validator.as_ref())
        else {
            return Ok(());
        };
        if v.warn || v.level == Level::Off {
            return Ok(());
        }
        let filter = Filter::parse(&v.rule)?;
        if v.level == Level::Moderate && before.is_some_and(|b| !filter.matches(b)) {
            return Ok(());
        }
        if filter.matches(doc) {
            return Ok(());
        }
        let mut e = CommandError::new(DOCUMENT_VALIDATION_FAILURE, "Document failed validation");
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        e.extra = Box::new(doc! {"errInfo": {"failingDocumentId": id}});
        Err(e)
    }

    /// Drops the oldest documents of a capped collection past its `max` or `size`, as mongod
    /// does after an insert (each drop recorded like a delete).
    pub(crate) fn enforce_cap(&mut self, db: &str, coll: &str) {
        let Some(c) = self.collection(db, coll) else {
            return;
        };
        let Some(cap) = c.options.capped.clone() else {
            return;
        };
        let mut count = c.len() as i64;
        let mut bytes: i64 = c
            .documents()
            .map(|d| bson::to_vec(d).map_or(0, |v| v.len() as i64))
            .sum();
        let oldest: Vec<(u64, i64)> = c
            .records()
            .map(|(rid, d)| (rid, bson::to_vec(d).map_or(0, |v| v.len() as i64)))
            .collect();
        for (rid, size) in oldest {
            // The newest document always stays, even alone over `size`.
            let over = cap.max.is_some_and(|m| count > m) || bytes > cap.size;
            if !over || count <= 1 {
                break;
            }
            self.delete(db, coll, rid);
            count -= 1;
            bytes -= size;
        }
    }
}
