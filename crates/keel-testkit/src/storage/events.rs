//! The write events storage emits: the journal's record format today, an oplog's tomorrow.

use bson::{Bson, Document, doc};

/// One applied change, with enough data to redo it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WriteEvent {
    CreateCollection {
        db: String,
        coll: String,
    },
    DropCollection {
        db: String,
        coll: String,
    },
    DropDatabase {
        db: String,
    },
    Insert {
        db: String,
        coll: String,
        doc: Document,
    },
    /// The full post-image, matched by `_id`.
    Replace {
        db: String,
        coll: String,
        doc: Document,
    },
    Delete {
        db: String,
        coll: String,
        id: Bson,
    },
    CreateIndex {
        db: String,
        coll: String,
        spec: Document,
    },
    DropIndex {
        db: String,
        coll: String,
        name: String,
    },
    /// Collection options (`changeStreamPreAndPostImages`).
    CollectionOptions {
        db: String,
        coll: String,
        pre_post_images: bool,
    },
    /// `capped` and `validator` options as `listCollections` reports them.
    CreateOptions {
        db: String,
        coll: String,
        options: Document,
    },
    /// `renameCollection` (an existing target dropped).
    Rename {
        db: String,
        coll: String,
        to_db: String,
        to_coll: String,
    },
}

impl WriteEvent {
    /// The journal record.
    pub(crate) fn to_document(&self) -> Document {
        match self {
            Self::CreateCollection { db, coll } => doc! {"op": "c", "db": db, "coll": coll},
            Self::DropCollection { db, coll } => doc! {"op": "dc", "db": db, "coll": coll},
            Self::DropDatabase { db } => doc! {"op": "dd", "db": db},
            Self::Insert { db, coll, doc } => doc! {"op": "i", "db": db, "coll": coll, "o": doc},
            Self::Replace { db, coll, doc } => doc! {"op": "u", "db": db, "coll": coll, "o": doc},
            Self::Delete { db, coll, id } => doc! {"op": "d", "db": db, "coll": coll, "id": id},
            Self::CreateIndex { db, coll, spec } => {
                doc! {"op": "ci", "db": db, "coll": coll, "o": spec}
            }
            Self::DropIndex { db, coll, name } => {
                doc! {"op": "di", "db": db, "coll": coll, "name": name}
            }
            Self::CollectionOptions {
                db,
                coll,
                pre_post_images,
            } => doc! {"op": "co", "db": db, "coll": coll, "prePostImages": pre_post_images},
            Self::CreateOptions { db, coll, options } => {
                doc! {"op": "cx", "db": db, "coll": coll, "o": options}
            }
            Self::Rename {
                db,
                coll,
                to_db,
                to_coll,
            } => doc! {"op": "rn", "db": db, "coll": coll, "toDb": to_db, "toColl": to_coll},
        }
    }

    /// Parses a journal record; `None` for anything unrecognised.
    pub(crate) fn from_document(d: &Document) -> Option<Self> {
        let s = |k: &str| d.get_str(k).ok().map(str::to_owned);
        let o = || d.get_document("o").ok().cloned();
        Some(match d.get_str("op").ok()? {
            "c" => Self::CreateCollection {
                db: s("db")?,
                coll: s("coll")?,
            },
            "dc" => Self::DropCollection {
                db: s("db")?,
                coll: s("coll")?,
            },
            "dd" => Self::DropDatabase { db: s("db")? },
            "i" => Self::Insert {
                db: s("db")?,
                coll: s("coll")?,
                doc: o()?,
            },
            "u" => Self::Replace {
                db: s("db")?,
                coll: s("coll")?,
                doc: o()?,
            },
            "d" => Self::Delete {
                db: s("db")?,
                coll: s("coll")?,
                id: d.get("id")?.clone(),
            },
            "ci" => Self::CreateIndex {
                db: s("db")?,
                coll: s("coll")?,
                spec: o()?,
            },
            "di" => Self::DropIndex {
                db: s("db")?,
                coll: s("coll")?,
                name: s("name")?,
            },
            "co" => Self::CollectionOptions {
                db: s("db")?,
                coll: s("coll")?,
                pre_post_images: d.get_bool("prePostImages").ok()?,
            },
            "cx" => Self::CreateOptions {
                db: s("db")?,
                coll: s("coll")?,
                options: o()?,
            },
            "rn" => Self::Rename {
                db: s("db")?,
                coll: s("coll")?,
                to_db: s("toDb")?,
                to_coll: s("toColl")?,
            },
            _ => return None,
        })
    }
}
