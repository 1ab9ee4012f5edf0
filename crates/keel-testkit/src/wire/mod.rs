//! The MongoDB wire protocol: message framing, OP_MSG / OP_QUERY parsing and reply encoding.
//!
//! Reference: <https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/> and the
//! OP_MSG specification (`specifications/source/message/OP_MSG.md`).

mod codec;

pub(crate) use codec::{
    HEADER_LEN, Header, MAX_MESSAGE_SIZE, Request, encode_op_msg, encode_op_reply, parse_request,
};
