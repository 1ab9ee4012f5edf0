//! Which namespaces a backup takes (`--include`/`--exclude` patterns) and the file names they get.

use crate::BackupError;

/// Databases a backup never takes: the server's own (mongodump skips `local` and `config` too,
/// and dumps `admin` only for users and roles, which this crate does not back up), and the
/// database where restores keep their progress.
const SYSTEM_DATABASES: [&str; 4] = ["admin", "local", "config", crate::restore::PROGRESS_DB];

/// One `db`, `db.*` or `db.coll` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    db: String,
    collection: Option<String>,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, BackupError> {
        let bad = || BackupError::BadPattern(text.to_owned());
        let (db, collection) = match text.split_once('.') {
            Some((db, "*")) => (db, None),
            Some((db, coll)) if !coll.is_empty() => (db, Some(coll.to_owned())),
            Some(_) => return Err(bad()),
            None => (text, None),
        };
        if db.is_empty() || db.contains(['/', '\\', ' ', '"', '$', '\0']) {
            return Err(bad());
        }
        Ok(Self {
            db: db.to_owned(),
            collection,
        })
    }

    fn matches(&self, db: &str, collection: &str) -> bool {
        self.db == db && self.collection.as_deref().is_none_or(|c| c == collection)
    }
}

/// Include and exclude patterns: a namespace is taken when some include matches (or there is
/// none) and no exclude does; system databases and `system.*` collections are never taken.
#[derive(Debug, Clone, Default)]
pub struct NamespaceFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl NamespaceFilter {
    /// A filter from pattern texts; a bad pattern is an error naming it.
    pub fn new<I, E>(include: I, exclude: E) -> Result<Self, BackupError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
        E: IntoIterator,
        E::Item: AsRef<str>,
    {
        let parse = |items: Vec<String>| -> Result<Vec<Pattern>, BackupError> {
            items.iter().map(|p| Pattern::parse(p)).collect()
        };
        Ok(Self {
            include: parse(include.into_iter().map(|s| s.as_ref().to_owned()).collect())?,
            exclude: parse(exclude.into_iter().map(|s| s.as_ref().to_owned()).collect())?,
        })
    }

    /// Whether the database may hold namespaces this filter takes.
    pub fn wants_database(&self, db: &str) -> bool {
        !SYSTEM_DATABASES.contains(&db)
            && (self.include.is_empty() || self.include.iter().any(|p| p.db == db))
    }

    /// Whether `db.collection` is taken.
    pub fn wants(&self, db: &str, collection: &str) -> bool {
        self.wants_database(db)
            && !collection.starts_with("system.")
            && (self.include.is_empty() || self.include.iter().any(|p| p.matches(db, collection)))
            && !self.exclude.iter().any(|p| p.matches(db, collection))
    }
}

/// mongodump's cap on an escaped collection name: 255 bytes minus the longest suffix
/// (`.metadata.json.gz`, 17 bytes) is 238 (mongo-tools `mongodump/prepare.go`, `outputPath`).
const MAX_ESCAPED_NAME: usize = 238;
/// How much of a long escaped name mongodump keeps before `%24` and the hash (`prepare.go`:
/// "First 208 bytes of col name + 3 bytes delimiter + 27 bytes base64 hash = 238 bytes max").
const KEPT_PREFIX: usize = 208;

/// The stem of a collection's files, exactly as mongodump names them (mongo-tools
/// `mongodump/prepare.go`, `MongoDump.outputPath`): the name escaped with Go's
/// `url.PathEscape` (`common/util`, `EscapeCollectionName`); when that is longer than 238 bytes,
/// its first 208 bytes, `%24` (an escaped `$`) and the unpadded URL-safe base64 of the SHA-1 of
/// the full name. The full name is kept in the metadata's `collectionName`, so every file name,
/// suffix included, stays within 255 bytes.
pub fn file_stem(collection: &str) -> String {
    let escaped = path_escape(collection);
    if escaped.len() <= MAX_ESCAPED_NAME {
        return escaped;
    }
    use base64::Engine as _;
    use sha1::Digest as _;
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha1::Sha1::digest(collection.as_bytes()));
    // `escaped` is ASCII (every other byte is percent-escaped), so any byte index is a boundary.
    format!("{}%24{hash}", &escaped[..KEPT_PREFIX])
}

/// Go's `url.PathEscape`: every byte but the unreserved ones (`A-Z a-z 0-9 - _ . ~`) and the
/// reserved ones a path segment may hold (`$ & + : = @`) becomes `%XX` (upper-case hex); `/`,
/// `;`, `,` and `?` are escaped (Go `net/url`, `shouldEscape` with `encodePathSegment`).
fn path_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'_' | b'.' | b'~' | b'$' | b'&' | b'+' | b':' | b'=' | b'@'
            );
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_select_namespaces() {
        let filter = NamespaceFilter::new(["app.*", "crm.users"], ["app.secret"]).unwrap();
        assert!(filter.wants("app", "orders"));
        assert!(!filter.wants("app", "secret"));
        assert!(filter.wants("crm", "users"));
        assert!(!filter.wants("crm", "leads"));
        assert!(!filter.wants("app", "system.views"));
        assert!(!NamespaceFilter::default().wants("admin", "x"));
        assert!(NamespaceFilter::new(["a."], Vec::<String>::new()).is_err());
    }

    #[test]
    fn names_are_escaped_as_go_path_escape() {
        assert_eq!(file_stem("orders"), "orders");
        assert_eq!(file_stem("a/b"), "a%2Fb");
        assert_eq!(file_stem("my coll"), "my%20coll");
        assert_eq!(file_stem("x$y:z@w"), "x$y:z@w");
        assert_eq!(file_stem("a;b,c?d%e"), "a%3Bb%2Cc%3Fd%25e");
        assert_eq!(file_stem("é"), "%C3%A9");
    }

    #[test]
    fn long_names_are_capped_at_255_bytes_as_mongodump() {
        // 238 escaped bytes are kept as they are; 239 are truncated.
        let fits = "a".repeat(238);
        assert_eq!(file_stem(&fits), fits);
        let long = "a".repeat(239);
        let stem = file_stem(&long);
        assert_eq!(stem.len(), 238);
        assert!(stem.starts_with(&"a".repeat(208)));
        assert_eq!(&stem[208..211], "%24");
        // base64url (unpadded) of SHA-1("a" x 239), as Go's RawURLEncoding writes it.
        use base64::Engine as _;
        use sha1::Digest as _;
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha1::Sha1::digest(long.as_bytes()));
        assert_eq!(&stem[211..], hash);
        assert_eq!(hash.len(), 27);
        assert!(stem.len() + ".metadata.json.gz".len() <= 255);
        // Non-ASCII names are escaped first (é is 6 bytes escaped), then capped.
        let wide = file_stem(&"é".repeat(100));
        assert_eq!(wide.len(), 238);
        assert_ne!(file_stem(&"é".repeat(101)), wide);
    }
}
