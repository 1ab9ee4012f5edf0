//! The oplog window (how far back a change stream can resume) and the cluster time a resume
//! token points at, so a checkpoint's place in the window can be judged.

use std::time::Duration;

use keel_core::{Error, Operation};
use mongodb::bson::{Bson, Document, Timestamp, doc};
use mongokeel::Keel;

/// The oldest and newest entries of the oplog (`local.oplog.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OplogWindow {
    /// `ts` of the oldest entry still kept: a checkpoint before it is lost.
    pub first: Timestamp,
    /// `ts` of the newest entry.
    pub last: Timestamp,
}

impl OplogWindow {
    /// `last - first` in seconds: what `rs.printReplicationInfo()` calls "log length start to
    /// end".
    pub fn length(&self) -> Duration {
        Duration::from_secs(u64::from(self.last.time.saturating_sub(self.first.time)))
    }

    /// How far `at` is behind the newest entry (zero when it is at or after it).
    pub fn behind(&self, at: Timestamp) -> Duration {
        Duration::from_secs(u64::from(self.last.time.saturating_sub(at.time)))
    }

    /// Whether `at` is older than the oldest kept entry (a resume from it would fail with
    /// `ChangeStreamHistoryLost`).
    pub fn lost(&self, at: Timestamp) -> bool {
        (at.time, at.increment) < (self.first.time, self.first.increment)
    }
}

/// Reads the oplog window the way `rs.printReplicationInfo()` / `db.getReplicationInfo()` do:
/// the first entry of `local.oplog.rs` in natural order (`sort({$natural: 1}).limit(1)`) and
/// the last (`sort({$natural: -1})`), their `ts` (MongoDB manual, "Replication Info
/// Reference": `tFirst`, `tLast`, `timeDiff`). `None` where there is no oplog (a standalone,
/// or an empty one). Needs read access to the `local` database (Atlas' `clusterMonitor` role
/// or a custom role); without it the error says so and the health check skips the window.
pub async fn oplog_window(keel: &Keel) -> Result<Option<OplogWindow>, Error> {
    let edge = |natural: i32| {
        keel.run(Operation::read(
            "change_stream.oplog_window",
            move |client| async move {
                client
                    .database("local")
                    .collection::<Document>("oplog.rs")
                    .find_one(doc! {})
                    .sort(doc! {"$natural": natural})
                    .projection(doc! {"ts": 1, "_id": 0})
                    .await
            },
        ))
    };
    let first = edge(1).await?;
    let last = edge(-1).await?;
    let ts = |d: Option<Document>| d.and_then(|d| d.get_timestamp("ts").ok());
    Ok(match (ts(first), ts(last)) {
        (Some(first), Some(last)) => Some(OplogWindow { first, last }),
        _ => None,
    })
}

/// The cluster time a resume token points at, read from its `_data`: a KeyString whose first
/// value is the event's timestamp (type byte `0x82`, then the seconds and the increment as
/// big-endian 32-bit integers), as mongod 4.2+ writes it. The MongoDB Kafka connector reads
/// it the same way (`ResumeTokens.getTimestamp`, mongo-kafka `util/ResumeTokens.java`).
/// `None` for anything else (an older token format, or Keel's own snapshot tokens).
pub fn token_time(token: &Document) -> Option<Timestamp> {
    let Some(Bson::String(data)) = token.get("_data") else {
        return None;
    };
    let hex = data.get(..18)?;
    if !hex[..2].eq_ignore_ascii_case("82") {
        return None;
    }
    let time = u32::from_str_radix(&hex[2..10], 16).ok()?;
    let increment = u32::from_str_radix(&hex[10..18], 16).ok()?;
    Some(Timestamp { time, increment })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_s_timestamp_is_read_from_its_keystring() {
        // A mongod 7.0 token of an insert at Timestamp(1700000000, 7).
        let token = doc! {"_data": "826553F100000000072B022C0100296E5A1004AB"};
        assert_eq!(
            token_time(&token),
            Some(Timestamp {
                time: 0x6553_F100,
                increment: 7
            })
        );
        assert_eq!(token_time(&doc! {"_data": "8200"}), None);
        assert_eq!(token_time(&doc! {"_data": "01AB"}), None);
        assert_eq!(token_time(&doc! {"keelSnapshot": {}}), None);
    }

    #[test]
    fn the_window_s_length_and_a_timestamp_s_place_in_it() {
        let ts = |time| Timestamp { time, increment: 1 };
        let w = OplogWindow {
            first: ts(100),
            last: ts(160),
        };
        assert_eq!(w.length(), Duration::from_secs(60));
        assert_eq!(w.behind(ts(130)), Duration::from_secs(30));
        assert_eq!(w.behind(ts(170)), Duration::ZERO);
        assert!(w.lost(ts(99)) && !w.lost(ts(100)));
    }
}
