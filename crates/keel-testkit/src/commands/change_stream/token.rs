//! Resume tokens and stream positions.
//!
//! A position orders everything a stream can report: `(cluster time, place in a transaction,
//! kind)`, where at one cluster time an event sorts before the `invalidate` it causes, a
//! transaction's events (which share the commit's cluster time, as on mongod) sort by their
//! place (mongod's `txnOpIndex`), and a high-water mark sorts after all of them. Tokens carry a position as `{_data: "<hex>"}`; drivers treat them as opaque.

use bson::{Bson, Document, Timestamp, doc};

use crate::commands::{CommandError, codes};
use crate::storage::ts_key;

/// What a position points at within one cluster time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// Just before the first event at this time (`startAtOperationTime`).
    Before = 0,
    /// A change event.
    Event = 1,
    /// The `invalidate` that follows a drop.
    Invalidate = 2,
    /// Everything at this time has been seen (`postBatchResumeToken` of an idle stream).
    HighWaterMark = 3,
}

/// A point in the change history; a stream returns what comes strictly after its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub(crate) time: u64,
    /// The event's place among its transaction's events (0 outside transactions; the
    /// maximum for a high-water mark, after every place).
    pub(crate) op: u32,
    pub(crate) kind: Kind,
    /// [`WHOLE`] for a whole event; `k` for the `k`-th fragment (from 1) of an event split by
    /// `$changeStreamSplitLargeEvent` (see `split`), which sorts before the whole event.
    pub(crate) fragment: u32,
}

/// The `fragment` of a position that is not inside a split event.
pub(crate) const WHOLE: u32 = u32::MAX;

impl Position {
    pub(crate) fn new(ts: Timestamp, kind: Kind) -> Self {
        Self::at(ts, default_op(kind), kind)
    }

    /// The position of the `op`-th entry (from 0) of a transaction committed at `ts`.
    pub(crate) fn at(ts: Timestamp, op: u32, kind: Kind) -> Self {
        Self {
            time: ts_key(ts),
            op,
            kind,
            fragment: WHOLE,
        }
    }

    pub(crate) fn timestamp(self) -> Timestamp {
        Timestamp {
            time: (self.time >> 32) as u32,
            increment: (self.time & 0xFFFF_FFFF) as u32,
        }
    }

    /// The resume token for this position.
    pub(crate) fn token(self) -> Document {
        let (time, kind, fragment, op) = (self.time, self.kind as u8, self.fragment, self.op);
        if op != default_op(self.kind) {
            doc! {"_data": format!("82{time:016X}{kind:02X}{fragment:08X}{op:08X}")}
        } else if fragment == WHOLE {
            doc! {"_data": format!("82{time:016X}{kind:02X}")}
        } else {
            doc! {"_data": format!("82{time:016X}{kind:02X}{fragment:08X}")}
        }
    }

    /// Parses a token this server issued.
    pub(crate) fn from_token(token: &Bson) -> Result<Self, CommandError> {
        let bad = || {
            CommandError::new(
                codes::FAILED_TO_PARSE,
                format!("Bad resume token: {token} was not issued by this server"),
            )
        };
        let Bson::Document(d) = token else {
            return Err(bad());
        };
        let data = d.get_str("_data").map_err(|_| bad())?;
        if ![20, 28, 36].contains(&data.len()) || !data.starts_with("82") {
            return Err(bad());
        }
        let hex_u32 = |range: std::ops::Range<usize>| match data.get(range) {
            Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16).map(Some),
            _ => Ok(None),
        };
        let fragment = hex_u32(20..28).map_err(|_| bad())?.unwrap_or(WHOLE);
        let op = hex_u32(28..36).map_err(|_| bad())?;
        let time = u64::from_str_radix(&data[2..18], 16).map_err(|_| bad())?;
        let kind = match u8::from_str_radix(&data[18..20], 16).map_err(|_| bad())? {
            0 => Kind::Before,
            1 => Kind::Event,
            2 => Kind::Invalidate,
            3 => Kind::HighWaterMark,
            _ => return Err(bad()),
        };
        Ok(Self {
            time,
            op: op.unwrap_or(default_op(kind)),
            kind,
            fragment,
        })
    }
}

/// The place of a position that names none: before every event of its time, or (a
/// high-water mark) after all of them.
fn default_op(kind: Kind) -> u32 {
    match kind {
        Kind::HighWaterMark => u32::MAX,
        Kind::Before | Kind::Event | Kind::Invalidate => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_order() {
        let ts = Timestamp {
            time: 1_700_000_000,
            increment: 7,
        };
        for kind in [
            Kind::Before,
            Kind::Event,
            Kind::Invalidate,
            Kind::HighWaterMark,
        ] {
            let p = Position::new(ts, kind);
            assert_eq!(Position::from_token(&Bson::Document(p.token())).unwrap(), p);
            assert_eq!(p.timestamp(), ts);
        }
        assert!(Position::new(ts, Kind::Event) < Position::new(ts, Kind::Invalidate));
        let later = Timestamp {
            time: 1_700_000_000,
            increment: 8,
        };
        assert!(Position::new(ts, Kind::HighWaterMark) < Position::new(later, Kind::Before));
        // A transaction's events at one cluster time.
        let second = Position::at(ts, 1, Kind::Event);
        assert_eq!(
            Position::from_token(&Bson::Document(second.token())).unwrap(),
            second
        );
        assert!(Position::new(ts, Kind::Before) < Position::new(ts, Kind::Event));
        assert!(Position::new(ts, Kind::Event) < second);
        assert!(second < Position::new(ts, Kind::HighWaterMark));
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for t in [
            Bson::Int32(1),
            Bson::Document(doc! {"_data": "8263AB"}),
            Bson::Document(doc! {"_data": "82ZZZZZZZZZZZZZZZZ01"}),
            Bson::Document(doc! {"_data": "8200000000000000000009"}),
        ] {
            assert_eq!(
                Position::from_token(&t).unwrap_err().code,
                codes::FAILED_TO_PARSE
            );
        }
    }
}
