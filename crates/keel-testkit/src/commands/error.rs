//! The error a command replies with: `{ok: 0, errmsg, code, codeName}` as mongod sends it.

use bson::{Bson, Document, doc};

use super::codes;

/// A command failure; becomes an `ok: 0` reply, never a dropped connection.
#[derive(Debug, Clone)]
pub(crate) struct CommandError {
    pub(crate) code: i32,
    pub(crate) errmsg: String,
    pub(crate) labels: Vec<String>,
    /// Extra top-level fields mongod adds for some errors (e.g. `keyPattern` for 11000).
    /// Boxed so every `Result<_, CommandError>` stays small on the stack.
    pub(crate) extra: Box<Document>,
}

impl CommandError {
    pub(crate) fn new(code: i32, errmsg: impl Into<String>) -> Self {
        Self {
            code,
            errmsg: errmsg.into(),
            labels: Vec::new(),
            extra: Box::default(),
        }
    }

    /// `BadValue` (2): an argument has a wrong value.
    pub(crate) fn bad_value(errmsg: impl Into<String>) -> Self {
        Self::new(codes::BAD_VALUE, errmsg)
    }

    /// `TypeMismatch` (14): an argument has the wrong BSON type.
    pub(crate) fn type_mismatch(field: &str, expected: &str, got: &Bson) -> Self {
        Self::new(
            codes::TYPE_MISMATCH,
            format!(
                "BSON field '{field}' is the wrong type '{}', expected type '{expected}'",
                type_name(got)
            ),
        )
    }

    /// `FailedToParse` (9).
    pub(crate) fn failed_to_parse(errmsg: impl Into<String>) -> Self {
        Self::new(codes::FAILED_TO_PARSE, errmsg)
    }

    /// The reply document.
    pub(crate) fn to_reply(&self) -> Document {
        let mut d = doc! {
            "ok": 0.0,
            "errmsg": self.errmsg.clone(),
            "code": self.code,
            "codeName": codes::name(self.code),
        };
        for (k, v) in self.extra.iter() {
            d.insert(k.clone(), v.clone());
        }
        if !self.labels.is_empty() {
            d.insert("errorLabels", self.labels.clone());
        }
        d
    }
}

/// The type alias mongod prints in messages (`$type` names).
pub(crate) fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}
