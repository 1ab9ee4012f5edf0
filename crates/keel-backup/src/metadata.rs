//! `<coll>.metadata.json` and `prelude.json` as mongodump writes them.
//!
//! The fields follow mongo-tools' `mongodump/metadata_dump.go` (`type Metadata struct { Options
//! bson.M "options,omitempty"; Indexes []bson.D "indexes"; UUID string "uuid,omitempty";
//! CollectionName string "collectionName"; Type string "type,omitempty" }`), written as canonical
//! Extended JSON v2, with `indexes` an empty array rather than null (mongorestore rejects null).
//! `prelude.json` follows `mongodump/mongodump.go`'s `DumpPrelude`, which writes the server and
//! tool versions.

use mongodb::bson::{Bson, Document};
use serde::{Deserialize, Serialize};

/// The name of the prelude file at the backup's root.
pub const PRELUDE_FILE: &str = "prelude.json";

/// `prelude.json`: the server and tool versions (mongodump's `ServerVersion`, `ToolVersion`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Prelude {
    /// The server's `buildInfo.version`.
    #[serde(rename = "ServerVersion")]
    pub server_version: String,
    /// The tool that wrote the backup.
    #[serde(rename = "ToolVersion")]
    pub tool_version: String,
}

/// One collection's (or view's) metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionMetadata {
    /// `listCollections`' `options` (validator, capped, collation, `viewOn`/`pipeline`...).
    pub options: Document,
    /// `listIndexes`' index specifications; empty for a view.
    pub indexes: Vec<Document>,
    /// The collection's UUID as 32 hex digits (mongodump's form), when the server reports it.
    pub uuid: Option<String>,
    /// The full collection name (the file name may be capped).
    pub collection_name: String,
    /// `collection`, `view` or `timeseries`.
    pub collection_type: String,
}

impl CollectionMetadata {
    /// The metadata file's text: canonical Extended JSON v2.
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        if !self.options.is_empty() {
            map.insert(
                "options".into(),
                Bson::Document(self.options.clone()).into_canonical_extjson(),
            );
        }
        let indexes = self
            .indexes
            .iter()
            .map(|i| Bson::Document(i.clone()).into_canonical_extjson())
            .collect();
        map.insert("indexes".into(), serde_json::Value::Array(indexes));
        if let Some(uuid) = &self.uuid {
            map.insert("uuid".into(), uuid.clone().into());
        }
        map.insert("collectionName".into(), self.collection_name.clone().into());
        map.insert("type".into(), self.collection_type.clone().into());
        serde_json::Value::Object(map).to_string()
    }

    /// Parses a metadata file's text (as mongodump or this crate wrote it).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let document = |v: &serde_json::Value| -> Result<Document, String> {
            match Bson::try_from(v.clone()).map_err(|e| e.to_string())? {
                Bson::Document(d) => Ok(d),
                other => Err(format!("expected a document, found {other}")),
            }
        };
        let options = match value.get("options") {
            Some(v) => document(v)?,
            None => Document::new(),
        };
        let indexes = match value.get("indexes") {
            Some(serde_json::Value::Array(items)) => {
                items.iter().map(document).collect::<Result<_, _>>()?
            }
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(_) => return Err("`indexes` is not an array".into()),
        };
        let text_field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(Self {
            options,
            indexes,
            uuid: text_field("uuid"),
            collection_name: text_field("collectionName").unwrap_or_default(),
            collection_type: text_field("type").unwrap_or_else(|| "collection".into()),
        })
    }
}

/// SHA-256 of the index specifications' canonical Extended JSON, in `listIndexes` order (the
/// manifest's `indexes_digest`).
pub(crate) fn indexes_digest(indexes: &[Document]) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for index in indexes {
        hasher.update(
            Bson::Document(index.clone())
                .into_canonical_extjson()
                .to_string(),
        );
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn metadata_round_trips_with_indexes_never_null() {
        let meta = CollectionMetadata {
            options: doc! {"capped": true, "size": 4096_i64},
            indexes: vec![],
            uuid: Some("00112233445566778899aabbccddeeff".into()),
            collection_name: "orders".into(),
            collection_type: "collection".into(),
        };
        let json = meta.to_json();
        assert!(json.contains(r#""indexes":[]"#), "{json}");
        assert!(json.contains(r#""size":{"$numberLong":"4096"}"#), "{json}");
        assert_eq!(CollectionMetadata::from_json(&json).unwrap(), meta);
    }
}
