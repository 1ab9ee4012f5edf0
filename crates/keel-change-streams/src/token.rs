//! `Token`: a resume token as the bytes the server sent, carried from the cursor to the commit.
//!
//! Most events' tokens are never stored (the default commits once per batch), so the token stays
//! raw BSON until a commit needs a `Document`: converting every event's token to a `Document`
//! through serde was about 3.8k instructions per event in a callgrind profile of the bench.

use keel_core::Error;
use mongodb::{
    bson::{Document, RawDocumentBuf},
    change_stream::event::ResumeToken,
};

/// A resume token (or one of the consumer's own checkpoint tokens), as raw BSON.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token(RawDocumentBuf);

impl Token {
    /// The driver's cached token. `None` when it is not a document (the server always sends
    /// one: `{_data: …}`).
    pub(crate) fn from_driver(token: &ResumeToken) -> Option<Self> {
        // The raw serializer copies the token's bytes (`RawDocumentBuf` serializes as itself).
        mongodb::bson::to_raw_document_buf(token).ok().map(Self)
    }

    pub(crate) fn from_document(doc: &Document) -> Self {
        // Serializing a `Document` to BSON only fails for a key with a NUL byte, which a token
        // read from BSON cannot have; an empty token is then refused by the server.
        Self(RawDocumentBuf::from_document(doc).unwrap_or_default())
    }

    /// The token as a `Document`, for a checkpoint store or a resume option.
    pub(crate) fn to_document(&self) -> Result<Document, Error> {
        Document::try_from(self.0.as_ref()).map_err(|e| {
            Error::config(format!(
                "the server sent a resume token that is not valid BSON ({e}); the consumer \
                 cannot store it as its checkpoint"
            ))
        })
    }
}

impl From<Document> for Token {
    fn from(doc: Document) -> Self {
        Self::from_document(&doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{Bson, doc, from_bson};

    #[test]
    fn a_driver_token_keeps_its_fields() {
        let driver: ResumeToken =
            from_bson(Bson::Document(doc! {"_data": "8263A1", "x": 1})).unwrap();
        let token = Token::from_driver(&driver).unwrap();
        assert_eq!(
            token.to_document().unwrap(),
            doc! {"_data": "8263A1", "x": 1}
        );
        assert_eq!(token, Token::from(doc! {"_data": "8263A1", "x": 1}));
    }
}
