//! Which namespaces a backup takes (`--include`/`--exclude` patterns) and the file names they get.

use crate::BackupError;

/// Databases a backup never takes: the server's own (mongodump skips `local` and `config` too,
/// and dumps `admin` only for users and roles, which this crate does not back up).
const SYSTEM_DATABASES: [&str; 3] = ["admin", "local", "config"];

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

/// The longest file name most file systems take (mongodump's cap, mongodump/prepare.go).
const MAX_FILE_NAME: usize = 255;
/// The longest suffix a collection's files get.
const LONGEST_SUFFIX: &str = ".metadata.json.gz";

/// The stem of a collection's files: the name itself, or, when `<stem>.metadata.json.gz` would be
/// longer than 255 bytes, a prefix plus `%24` and a hash of the full name, as mongodump does
/// (mongo-tools mongodump/prepare.go truncates long names and keeps the full one in the
/// metadata's `collectionName`). `/` and `\0` cannot appear in a file name and are escaped the
/// way mongodump escapes them (`%2F`).
pub fn file_stem(collection: &str) -> String {
    let escaped = collection.replace('%', "%25").replace('/', "%2F");
    if escaped.len() + LONGEST_SUFFIX.len() <= MAX_FILE_NAME {
        return escaped;
    }
    use sha2::Digest as _;
    let hash = hex::encode(&sha2::Sha256::digest(collection.as_bytes())[..12]);
    let room = MAX_FILE_NAME - LONGEST_SUFFIX.len() - "%24".len() - hash.len();
    let mut end = room;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}%24{hash}", &escaped[..end])
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
    fn long_names_are_capped_at_255_bytes() {
        let long = "é".repeat(200);
        let stem = file_stem(&long);
        assert!(stem.len() + LONGEST_SUFFIX.len() <= MAX_FILE_NAME);
        assert_ne!(file_stem(&format!("{long}x")), stem);
        assert_eq!(file_stem("orders"), "orders");
        assert_eq!(file_stem("a/b"), "a%2Fb");
    }
}
