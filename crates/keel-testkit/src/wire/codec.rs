//! Decoding requests (OP_MSG with document sequences, legacy OP_QUERY) and encoding replies.

use bson::{Bson, Document};

/// Length of the standard message header.
pub(crate) const HEADER_LEN: usize = 16;
/// Largest message mongod accepts (`maxMessageSizeBytes` in `hello`).
pub(crate) const MAX_MESSAGE_SIZE: usize = 48_000_000;

const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_COMPRESSED: i32 = 2012;
const OP_MSG: i32 = 2013;

const FLAG_CHECKSUM_PRESENT: u32 = 1;
const FLAG_MORE_TO_COME: u32 = 1 << 1;
/// Bits 0-15 are "required": a receiver must reject unknown ones (OP_MSG spec).
const REQUIRED_FLAGS_KNOWN: u32 = FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME;

/// The standard header of every message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) length: i32,
    pub(crate) request_id: i32,
    pub(crate) op_code: i32,
}

impl Header {
    pub(crate) fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        let word =
            |i: usize| i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Self {
            length: word(0),
            request_id: word(4),
            op_code: word(12),
        }
    }
}

/// A decoded request.
#[derive(Debug)]
pub(crate) enum Request {
    /// OP_MSG: the body with document sequences folded in as arrays.
    Msg {
        body: Document,
        /// The client expects no reply (unacknowledged writes).
        more_to_come: bool,
    },
    /// Legacy OP_QUERY; only the handshake on `<db>.$cmd` is still served by modern mongod.
    Query {
        full_collection_name: String,
        query: Document,
    },
}

/// Why a message could not be decoded. Always answered with an error reply.
#[derive(Debug)]
pub(crate) struct WireError(pub(crate) String);

fn take<'a>(buf: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], WireError> {
    if buf.len() < n {
        return Err(WireError(format!("message truncated while reading {what}")));
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

fn read_i32(buf: &mut &[u8], what: &str) -> Result<i32, WireError> {
    let b = take(buf, 4, what)?;
    Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_cstring(buf: &mut &[u8], what: &str) -> Result<String, WireError> {
    let end = buf
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| WireError(format!("unterminated string in {what}")))?;
    let s = std::str::from_utf8(&buf[..end])
        .map_err(|_| WireError(format!("{what} is not valid UTF-8")))?
        .to_owned();
    *buf = &buf[end + 1..];
    Ok(s)
}

/// Reads one BSON document, checking its declared length against what is left.
fn read_document(buf: &mut &[u8], what: &str) -> Result<Document, WireError> {
    if buf.len() < 5 {
        return Err(WireError(format!("{what}: truncated BSON document")));
    }
    let len = i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l >= 5 && l <= buf.len())
        .ok_or_else(|| WireError(format!("{what}: invalid BSON document length {len}")))?;
    let mut bytes = take(buf, len, what)?;
    Document::from_reader(&mut bytes).map_err(|e| WireError(format!("{what}: invalid BSON: {e}")))
}

/// Decodes the body (everything after the header) of a message.
pub(crate) fn parse_request(header: Header, mut body: &[u8]) -> Result<Request, WireError> {
    match header.op_code {
        OP_MSG => parse_op_msg(&mut body),
        OP_QUERY => {
            let _flags = read_i32(&mut body, "OP_QUERY flags")?;
            let full_collection_name = read_cstring(&mut body, "OP_QUERY collection name")?;
            let _skip = read_i32(&mut body, "OP_QUERY numberToSkip")?;
            let _return = read_i32(&mut body, "OP_QUERY numberToReturn")?;
            let query = read_document(&mut body, "OP_QUERY query")?;
            Ok(Request::Query {
                full_collection_name,
                query,
            })
        }
        OP_COMPRESSED => Err(WireError(
            "OP_COMPRESSED is not supported: this server advertises no compressors".into(),
        )),
        other => Err(WireError(format!("unsupported opCode {other}"))),
    }
}

fn parse_op_msg(body: &mut &[u8]) -> Result<Request, WireError> {
    let flags = u32::from_le_bytes(
        take(body, 4, "OP_MSG flagBits")?
            .try_into()
            .map_err(|_| WireError("flagBits".into()))?,
    );
    let unknown_required = flags & 0xFFFF & !REQUIRED_FLAGS_KNOWN;
    if unknown_required != 0 {
        return Err(WireError(format!(
            "unknown required OP_MSG flag bits {unknown_required:#x}"
        )));
    }
    if flags & FLAG_CHECKSUM_PRESENT != 0 {
        // The CRC-32C trailer is optional to verify; TCP already checksums on loopback.
        if body.len() < 4 {
            return Err(WireError(
                "OP_MSG checksum flag set but no checksum present".into(),
            ));
        }
        *body = &body[..body.len() - 4];
    }
    let mut main: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Bson>)> = Vec::new();
    while !body.is_empty() {
        let kind = take(body, 1, "OP_MSG section kind")?[0];
        match kind {
            0 => {
                if main.is_some() {
                    return Err(WireError("OP_MSG has more than one body section".into()));
                }
                main = Some(read_document(body, "OP_MSG body")?);
            }
            1 => {
                let size = read_i32(body, "document sequence size")?;
                let size = usize::try_from(size)
                    .ok()
                    .filter(|&s| s >= 4 && s - 4 <= body.len())
                    .ok_or_else(|| WireError(format!("invalid document sequence size {size}")))?;
                let mut section = take(body, size - 4, "document sequence")?;
                let identifier = read_cstring(&mut section, "document sequence identifier")?;
                let mut docs = Vec::new();
                while !section.is_empty() {
                    docs.push(Bson::Document(read_document(
                        &mut section,
                        "document sequence",
                    )?));
                }
                sequences.push((identifier, docs));
            }
            other => return Err(WireError(format!("unknown OP_MSG section kind {other}"))),
        }
    }
    let mut body_doc = main.ok_or_else(|| WireError("OP_MSG has no body section".into()))?;
    for (identifier, docs) in sequences {
        if body_doc.contains_key(&identifier) {
            return Err(WireError(format!(
                "duplicate field '{identifier}' in OP_MSG body and document sequence"
            )));
        }
        body_doc.insert(identifier, Bson::Array(docs));
    }
    Ok(Request::Msg {
        body: body_doc,
        more_to_come: flags & FLAG_MORE_TO_COME != 0,
    })
}

fn finish_header(buf: &mut [u8], start: usize, request_id: i32, response_to: i32, op_code: i32) {
    let len = i32::try_from(buf.len() - start).unwrap_or(i32::MAX);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&request_id.to_le_bytes());
    buf[start + 8..start + 12].copy_from_slice(&response_to.to_le_bytes());
    buf[start + 12..start + 16].copy_from_slice(&op_code.to_le_bytes());
}

/// Appends an OP_MSG reply holding `doc` as its single body section.
pub(crate) fn encode_op_msg(buf: &mut Vec<u8>, request_id: i32, response_to: i32, doc: &Document) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.push(0);
    // Writing into a Vec cannot fail for I/O reasons; a document that was built in memory
    // always serializes, so an error here is impossible in practice. Fall back to an empty reply.
    if doc.to_writer(&mut *buf).is_err() {
        buf.truncate(start + HEADER_LEN + 5);
        buf.extend_from_slice(&[5, 0, 0, 0, 0]);
    }
    finish_header(buf, start, request_id, response_to, OP_MSG);
}

/// Appends a legacy OP_REPLY holding `doc` (the answer to an OP_QUERY handshake).
pub(crate) fn encode_op_reply(
    buf: &mut Vec<u8>,
    request_id: i32,
    response_to: i32,
    doc: &Document,
) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    buf.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
    buf.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    buf.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    buf.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    if doc.to_writer(&mut *buf).is_err() {
        buf.truncate(start + HEADER_LEN + 20);
        buf.extend_from_slice(&[5, 0, 0, 0, 0]);
    }
    finish_header(buf, start, request_id, response_to, OP_REPLY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn msg_bytes(sections: &[u8]) -> Vec<u8> {
        let mut b = 0u32.to_le_bytes().to_vec();
        b.extend_from_slice(sections);
        b
    }

    #[test]
    fn document_sequences_become_arrays() {
        let mut sections = vec![0u8];
        doc! {"insert": "c", "$db": "d"}
            .to_writer(&mut sections)
            .unwrap();
        let mut seq = Vec::new();
        seq.extend_from_slice(b"documents\0");
        doc! {"a": 1}.to_writer(&mut seq).unwrap();
        doc! {"a": 2}.to_writer(&mut seq).unwrap();
        sections.push(1);
        sections.extend_from_slice(&(i32::try_from(seq.len()).unwrap() + 4).to_le_bytes());
        sections.extend_from_slice(&seq);
        let header = Header {
            length: 0,
            request_id: 1,
            op_code: OP_MSG,
        };
        let Request::Msg { body, .. } = parse_request(header, &msg_bytes(&sections)).unwrap()
        else {
            panic!("expected OP_MSG");
        };
        assert_eq!(body.get_array("documents").unwrap().len(), 2);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let header = Header {
            length: 0,
            request_id: 1,
            op_code: OP_MSG,
        };
        for junk in [
            &[][..],
            &[0, 0, 0, 0, 0, 200, 0, 0, 0][..],
            &[0, 0, 0, 0, 7][..],
        ] {
            assert!(parse_request(header, junk).is_err());
        }
    }
}
